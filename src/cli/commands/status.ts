import { Command } from 'commander';
import { JobStore, readJobLog, resolveDataDir, runLogDir, statusReport, type StatusReport } from '../../jobs/index.ts';
import { usesEnvironment } from '../environment-help.ts';
import { UsageError } from '../exit-codes.ts';
import { count, formatBytes, formatDuration, formatTime } from '../format.ts';
import { printJson, printLine } from '../output.ts';

interface StatusOptions {
  readonly dataDir?: string;
  readonly json?: boolean;
  readonly reset?: boolean;
  readonly plan?: string;
}

function ago(ms: number): string {
  return `${formatDuration(ms / 1000)} ago`;
}

function progressText(bytesDone: number, bytesTotal: number, speed: number): string {
  const percent = bytesTotal > 0 ? `${((100 * bytesDone) / bytesTotal).toFixed(0)}% ` : '';
  return `${percent}${formatBytes(bytesDone)}/${formatBytes(bytesTotal)} ${formatBytes(speed)}/s`;
}

function render(report: StatusReport): void {
  printLine('destinations:');
  if (report.destinations.length === 0) printLine('  none yet: no backup has run with this data directory');
  for (const d of report.destinations) {
    const last = d.lastSuccess ? `last success ${ago(d.lastSuccess.ageMs)} (plan ${d.lastSuccess.planName}, job ${d.lastSuccess.jobId})` : 'no successful backup yet';
    printLine(`  ${d.destination.location}: ${last}${d.active.length ? `; busy with job ${d.active.map((a) => a.jobId).join(', ')}` : ''}`);
  }
  printLine('running:');
  if (report.live.length === 0) printLine('  nothing');
  for (const l of report.live) {
    const j = l.job;
    printLine(`  job ${j.id} (plan ${j.planName}) ${j.status}, ${j.stage ?? 'starting'}: ${j.filesDone}/${j.filesTotal} files, ${progressText(j.bytesDone, j.bytesTotal, j.speed)}; pid ${j.pid} on ${j.host}, heartbeat ${ago(l.heartbeatAgeMs)}`);
    for (const d of l.destinations) printLine(`    ${d.destinationName}: ${d.status}, ${progressText(d.bytesDone, d.bytesTotal, d.speed)}${d.error ? ` (${d.error})` : ''}`);
  }
  if (report.queued.length > 0) {
    printLine('queued:');
    for (const j of report.queued) {
      const when = j.orphaned
        ? `retry ${j.retryCount} waits for the next coffer backup --plan ${j.planName} (process ${j.pid}, which was to run it, is gone)`
        : j.nextAttemptAt && j.nextAttemptAt > report.now
          ? `retry ${j.retryCount} in ${formatDuration((j.nextAttemptAt - report.now) / 1000)}`
          : 'due now';
      printLine(`  job ${j.id} (plan ${j.planName}): ${when}${j.error ? `; last error: ${j.error}` : ''}`);
    }
  }
  printLine('problems:');
  if (report.problems.length === 0) printLine('  none');
  for (const p of report.problems) {
    printLine(`  job ${p.job.id} (plan ${p.job.planName}) ${p.job.status}: ${p.job.error ?? 'no error recorded'}`);
    for (const r of p.runs) if (r.error) printLine(`    attempt ${r.run} (${formatTime(r.startedAt)}): ${r.error}`);
  }
}

export function statusCommand(): Command {
  const command = new Command('status')
    .description('last success per destination, running jobs with live progress, failed and interrupted jobs')
    .option('--data-dir <dir>', 'the job database and run logs (default $COFFER_DATA_DIR or ~/.local/share/coffer)')
    .option('--reset', 'clear job state (of --plan, or of every plan): history only, never repository data')
    .option('--plan <name>', 'with --reset: only this plan')
    .option('--json', 'machine-readable output (JSON lines, see docs/JSON.md)');
  return usesEnvironment(command, ['COFFER_DATA_DIR']).action((options: StatusOptions) => {
      const jobs = JobStore.open(resolveDataDir(options.dataDir));
      try {
        jobs.detectStaleJobs();
        if (options.reset) {
          const plan = options.plan === undefined ? undefined : jobs.plan(options.plan);
          if (options.plan !== undefined && !plan) throw new UsageError(`no plan "${options.plan}" in the job database`);
          const cleared = jobs.reset(plan ? { planId: plan.id } : {});
          if (options.json) printJson({ type: 'reset', jobs: cleared });
          else printLine(`cleared ${count(cleared, 'job')}; repositories are untouched`);
          return;
        }
        const report = statusReport(jobs);
        if (options.json) printJson({ type: 'status-report', ...report });
        else render(report);
      } finally {
        jobs.close();
      }
    });
}

export function logsCommand(): Command {
  const command = new Command('logs')
    .description("print a job's log (default: the newest job)")
    .argument('[job]', 'job number')
    .option('--data-dir <dir>', 'the job database and run logs (default $COFFER_DATA_DIR or ~/.local/share/coffer)')
    .option('--json', 'the log lines as they are stored, each with type "log" (JSON lines)');
  return usesEnvironment(command, ['COFFER_DATA_DIR']).action((jobArg: string | undefined, options: StatusOptions) => {
      const dataDir = resolveDataDir(options.dataDir);
      const jobs = JobStore.open(dataDir);
      let jobId: number;
      try {
        const newest = jobs.selectJobs('ORDER BY j.id DESC LIMIT 1')[0];
        jobId = jobArg === undefined ? (newest?.id ?? NaN) : Number(jobArg);
        if (jobArg !== undefined && !Number.isInteger(jobId)) throw new UsageError(`"${jobArg}" is not a job number`);
        if (Number.isNaN(jobId)) throw new UsageError('no job has run yet with this data directory');
        if (!jobs.job(jobId)) throw new UsageError(`no job ${jobId}; coffer status lists them`);
      } finally {
        jobs.close();
      }
      const entries = readJobLog(runLogDir(dataDir), jobId);
      if (entries.length === 0) printLine(`job ${jobId} has no log (it is older than the kept logs)`);
      for (const e of entries) {
        if (options.json) printJson({ type: 'log', ...e });
        else {
          const { time, level, job, run, msg, ...fields } = e;
          const extra = Object.keys(fields).length ? ` ${JSON.stringify(fields)}` : '';
          printLine(`${formatTime(time)} ${level.padEnd(5)} job ${job} run ${run}: ${msg}${extra}`);
        }
      }
    });
}
