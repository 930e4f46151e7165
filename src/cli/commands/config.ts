// `coffer config check`: every problem of the configuration file, each with its line and field.
import { Command } from 'commander';
import fs from 'node:fs';
import { durationMs, scheduleOf } from '../../config/automation.ts';
import { checkConfigText, resolveConfigFile } from '../../config/config-file.ts';
import { describeProblem } from '../../config/problems.ts';
import { describeSchedule, nextSlot } from '../../config/schedule.ts';
import { usesEnvironment } from '../environment-help.ts';
import { UsageError } from '../exit-codes.ts';
import { formatTime } from '../format.ts';
import { printJson, printLine } from '../output.ts';

interface CheckOptions {
  readonly config?: string;
  readonly json?: boolean;
}

function readText(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UsageError(`no configuration file at ${file}; write one with coffer setup or give --config FILE`);
    throw new UsageError(`cannot read ${file}: ${code ?? (err as Error).message}`);
  }
}

export function configCommand(): Command {
  const check = usesEnvironment(new Command('check'), ['COFFER_CONFIG'])
    .description('validate the configuration file: every problem with its line and field')
    .option('--config <file>', 'configuration file (default $COFFER_CONFIG or ~/.config/coffer/config.yaml)')
    .option('--json', 'machine-readable output (JSON lines, see docs/JSON.md)')
    .action((options: CheckOptions) => {
      const file = resolveConfigFile(options.config);
      const { config, problems } = checkConfigText(readText(file));
      const now = Date.now();
      const plans = Object.entries(config?.plans ?? {}).map(([name, plan]) => {
        const schedule = scheduleOf(plan);
        const next = schedule && nextSlot(schedule, now);
        return { name, ...(schedule ? { schedule: describeSchedule(schedule) } : {}), ...(next ? { nextRun: new Date(next).toISOString() } : {}), ...(plan.maxAge ? { maxAgeMs: durationMs(plan.maxAge) } : {}) };
      });
      if (options.json) printJson({ type: 'config-check', file, ok: problems.length === 0, problems, plans });
      else if (problems.length > 0) {
        for (const p of problems) process.stderr.write(`${describeProblem(file, p)}\n`);
        process.stderr.write(`coffer: ${problems.length} ${problems.length === 1 ? 'problem' : 'problems'} in ${file}; fix ${problems.length === 1 ? 'it' : 'them'} and run coffer config check again\n`);
      } else {
        printLine(`${file}: ok, ${plans.length} ${plans.length === 1 ? 'plan' : 'plans'}`);
        for (const p of plans) printLine(`  ${p.name}: ${p.schedule ? `${p.schedule}, next run ${p.nextRun ? formatTime(p.nextRun) : 'never'}` : 'no schedule (runs only when started)'}`);
      }
      if (problems.length > 0) process.exitCode = 1;
    });
  return new Command('config').description('the configuration file').addCommand(check);
}
