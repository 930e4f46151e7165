// Controlling the daemon while it runs: `coffer jobs` (a live panel, or --json), `coffer pause`,
// `coffer resume`, `coffer cancel` and `coffer run`, over its control socket.
import { Command } from 'commander';
import { controlRequest, type ControlReply } from '../../daemon/control.ts';
import type { DaemonStatus, JobView } from '../../daemon/status.ts';
import { resolveDataDir } from '../../jobs/index.ts';
import { usesEnvironment } from '../environment-help.ts';
import { UsageError } from '../exit-codes.ts';
import { formatBytes, formatDuration, formatTime } from '../format.ts';
import { printJson, printLine } from '../output.ts';

interface ControlOptions {
  readonly dataDir?: string;
  readonly json?: boolean;
}

const ICONS: Record<JobView['state'], string> = {
  running: '▶',
  paused: '⏸',
  queued: '…',
  retrying: '↻',
  completed: '✔',
  failed: '✖',
  cancelled: '⊘',
  interrupted: '⚠',
};

const BAR = 20;

function bar(done: number, total: number): string {
  if (total <= 0) return `[${'░'.repeat(BAR)}]`;
  const filled = Math.min(BAR, Math.round((BAR * done) / total));
  return `[${'█'.repeat(filled)}${'░'.repeat(BAR - filled)}] ${((100 * Math.min(done, total)) / total).toFixed(0).padStart(3)}%`;
}

function ago(now: number, at: number): string {
  return `${formatDuration((now - at) / 1000)} ago`;
}

/** The panel's lines: one per job, and one per destination of a running job. */
export function panelLines(status: DaemonStatus): string[] {
  const lines: string[] = [];
  const count = (state: JobView['state']): number => status.jobs.filter((j) => j.state === state).length;
  lines.push(
    `coffer daemon (pid ${status.pid}) · ${count('running')} running · ${count('paused')} paused · ${count('queued')} queued · ` +
      `${count('retrying')} retrying · at most ${status.concurrency} at once${status.paused ? ' · EVERYTHING PAUSED (coffer resume --all)' : ''}`,
  );
  if (status.jobs.length === 0) {
    const next = [...status.schedules].sort((a, b) => a.nextRun - b.nextRun)[0];
    lines.push(next ? `  no jobs; next: plan ${next.plan} at ${formatTime(next.nextRun)}` : '  no jobs, and no plan has a schedule; coffer run PLAN starts one');
  }
  const width = Math.max(4, ...status.jobs.map((j) => j.plan.length));
  for (const job of status.jobs) {
    const head = `${ICONS[job.state]} ${String(job.id).padStart(4)} ${job.plan.padEnd(width)}`;
    switch (job.state) {
      case 'running':
      case 'paused': {
        // Totals still being counted (or a stream whose length comes at its end): no percentage yet.
        const known = job.totalsKnown !== false;
        const progress = known ? bar(job.bytesDone, job.bytesTotal) : `[${'·'.repeat(BAR)}]     `;
        const about = job.totalsEstimated ? '~' : '';
        const amounts = known ? `${formatBytes(job.bytesDone)}/${about}${formatBytes(job.bytesTotal)} ${job.filesDone}/${about}${job.filesTotal} files` : `${formatBytes(job.bytesDone)} ${job.filesDone} files`;
        const pace = job.state === 'paused' ? '' : ` ${formatBytes(job.speed)}/s${job.etaSeconds !== undefined ? ` ETA ${formatDuration(job.etaSeconds)}` : ''}`;
        lines.push(`${head} ${progress} ${job.state === 'paused' ? 'paused' : (job.stage ?? 'starting')} ${amounts}${pace}`);
        for (const d of job.destinations ?? []) {
          const total = d.bytesDone + d.bytesQueued;
          const deta = d.etaSeconds !== undefined ? ` ETA ${formatDuration(d.etaSeconds)}` : '';
          lines.push(`      ${d.location}: ${d.state === 'done' ? 'committed' : `${bar(d.bytesDone, total)} ${d.state} ${formatBytes(d.speed)}/s${deta}`}${d.error ? ` (${d.error})` : ''}`);
        }
        break;
      }
      case 'queued':
        lines.push(`${head} queued${job.reason ? ` (${job.reason})` : ''}${job.priority ? `, priority ${job.priority}` : ''}`);
        break;
      case 'retrying':
        lines.push(`${head} retry ${job.retryCount} in ${formatDuration(((job.nextAttemptAt ?? status.now) - status.now) / 1000)}${job.error ? `: ${job.error}` : ''}`);
        break;
      default:
        lines.push(`${head} ${job.state} ${job.finishedAt ? ago(status.now, job.finishedAt) : ''}${job.error ? `: ${job.error}` : ''}`);
    }
  }
  return lines;
}

async function status(options: ControlOptions): Promise<DaemonStatus> {
  return (await controlRequest(resolveDataDir(options.dataDir), 'GET', '/v1/status')) as DaemonStatus;
}

async function jobsPanel(options: ControlOptions & { once?: boolean }): Promise<void> {
  if (options.json) return printJson({ ...(await status(options)) });
  const out = process.stdout;
  if (!out.isTTY || options.once) {
    for (const line of panelLines(await status(options))) printLine(line);
    return;
  }
  // A live panel: redrawn every second until Ctrl-C.
  let shown = 0;
  let stop = false;
  let wake: (() => void) | undefined;
  const onInterrupt = (): void => {
    stop = true;
    wake?.();
  };
  process.on('SIGINT', onInterrupt);
  out.write('\x1b[?25l');
  try {
    while (!stop) {
      const width = out.columns || 100;
      const lines = panelLines(await status(options)).map((l) => (l.length > width ? `${l.slice(0, width - 1)}…` : l));
      lines.push('(Ctrl-C to leave; coffer pause/resume/cancel JOB act on a job)');
      out.write(`${shown > 0 ? `\x1b[${shown}A` : ''}${lines.map((l) => `\x1b[2K${l}`).join('\n')}\n\x1b[J`);
      shown = lines.length;
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 1000);
      });
    }
  } finally {
    out.write('\x1b[?25h');
    process.off('SIGINT', onInterrupt);
  }
}

function jobArgument(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) <= 0) throw new UsageError(`"${text}" is not a job id (a number); coffer jobs lists them`);
  return Number(text);
}

async function send(options: ControlOptions, route: string, body: Record<string, unknown>): Promise<void> {
  const reply = (await controlRequest(resolveDataDir(options.dataDir), 'POST', route, body)) as ControlReply;
  if (options.json) printJson({ type: route.slice('/v1/'.length), ...reply });
  else printLine(reply.message);
}

function target(name: string, job: string | undefined, options: { all?: boolean }): Record<string, unknown> {
  if (job !== undefined && options.all) throw new UsageError(`give a job or --all, not both (coffer ${name} 12, or coffer ${name} --all)`);
  if (job === undefined && !options.all) throw new UsageError(`say which job (coffer ${name} 12) or --all; coffer jobs lists them`);
  return options.all ? { all: true } : { job: jobArgument(job) };
}

const withControl = (command: Command): Command =>
  usesEnvironment(command, ['COFFER_DATA_DIR']).option('--data-dir <dir>', 'the data directory the daemon uses (default $COFFER_DATA_DIR or ~/.local/share/coffer)').option('--json', 'machine-readable output (JSON lines, see docs/JSON.md)');

export function jobsCommands(): Command[] {
  return [
    withControl(new Command('jobs').description("the daemon's jobs: running (with progress per destination), paused, queued, retrying, lately ended"))
      .option('--once', 'print the panel once instead of keeping it live')
      .action((options: ControlOptions & { once?: boolean }) => jobsPanel(options)),
    withControl(new Command('pause').description('pause a job (it finishes its current pack and waits) or everything').argument('[job]', 'job id (see coffer jobs)'))
      .option('--all', 'pause everything: running jobs wait, queued jobs do not start')
      .action((job: string | undefined, options: ControlOptions & { all?: boolean }) => send(options, '/v1/pause', target('pause', job, options))),
    withControl(new Command('resume').description('resume a paused job or everything').argument('[job]', 'job id (see coffer jobs)'))
      .option('--all', 'resume everything')
      .action((job: string | undefined, options: ControlOptions & { all?: boolean }) => send(options, '/v1/resume', target('resume', job, options))),
    withControl(new Command('cancel').description('cancel a job: a running one checkpoints and stops, a queued one leaves the queue').argument('<job>', 'job id (see coffer jobs)')).action(
      (job: string, options: ControlOptions) => send(options, '/v1/cancel', { job: jobArgument(job) }),
    ),
    withControl(new Command('run').description('run a plan now, through the daemon\'s queue').argument('<plan>', 'plan name from the configuration')).action((plan: string, options: ControlOptions) =>
      send(options, '/v1/run', { plan }),
    ),
  ];
}
