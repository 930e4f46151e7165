// `coffer daemon`: runs the plans on their schedules in the foreground (systemd keeps it running);
// `coffer daemon install` writes a systemd unit for it; `coffer daemon status` says whether it runs.
import { Command } from 'commander';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, resolveConfigFile, type PlanConfig } from '../../config/config-file.ts';
import { offsetClock } from '../../daemon/clock.ts';
import { controlRequest, DaemonUnreachableError } from '../../daemon/control.ts';
import { Daemon } from '../../daemon/daemon.ts';
import type { DaemonStatus } from '../../daemon/status.ts';
import { systemdUnit } from '../../daemon/systemd.ts';
import { resolveDataDir } from '../../jobs/index.ts';
import { describeError, EXIT_INTERRUPTED, isRetryable, UsageError } from '../errors.ts';
import { usesEnvironment } from '../environment-help.ts';
import { formatDuration, formatTime } from '../format.ts';
import { printJson, printLine, printWarning } from '../output.ts';
import { fromCommand, fromFile } from '../passphrase.ts';
import { openConfiguredStore } from '../repo-options.ts';
import { planPaths, selectionOf, type SelectionOptions } from '../selection-options.ts';

/** The daemon has no command line of its own to add to a plan's selection. */
const NO_SELECTION_FLAGS: SelectionOptions = { exclude: [], excludeFile: [], iexclude: [], excludeIfPresent: [], filesFrom: [] };

interface DaemonOptions {
  readonly config?: string;
  readonly dataDir?: string;
}

/** A daemon cannot ask: the passphrase comes from the plan or from the daemon's environment. */
async function planPassphrase(plan: PlanConfig): Promise<string> {
  if (plan.passwordFile) return fromFile(plan.passwordFile);
  if (plan.passwordCommand) return fromCommand(plan.passwordCommand);
  const env = process.env.COFFER_PASSWORD;
  if (env) return env;
  throw new UsageError('no passphrase for this plan: give it passwordFile or passwordCommand in the configuration (the daemon cannot ask)');
}

async function runDaemon(options: DaemonOptions): Promise<void> {
  const testClock = process.env.COFFER_TEST_CLOCK;
  const daemon = await Daemon.start({
    configFile: resolveConfigFile(options.config),
    dataDir: resolveDataDir(options.dataDir),
    // Test mode (docs/DAEMON.md): a wall clock the tests move, looked at often.
    ...(testClock ? { clock: offsetClock(testClock), checkIntervalMs: 200, pollMs: 200, sendOptions: { retryDelaysMs: [200, 500], timeoutMs: 5_000 } } : {}),
    runner: {
      openStore: openConfiguredStore,
      passphrase: planPassphrase,
      planSources: (plan) => ({ paths: planPaths(plan), selection: selectionOf(NO_SELECTION_FLAGS, plan) }),
      describeError,
      isRetryable,
    },
  });
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signal === 'SIGHUP') return daemon.reload();
    process.once(signal, () => process.exit(EXIT_INTERRUPTED));
    void daemon.stop(`received ${signal}`);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('SIGHUP', onSignal);
  await daemon.done;
  process.off('SIGHUP', onSignal);
}

interface InstallOptions extends DaemonOptions {
  readonly user?: boolean;
  readonly system?: boolean;
  readonly unitDir?: string;
  readonly force?: boolean;
}

function installUnit(options: InstallOptions): void {
  if (options.user && options.system) throw new UsageError('give --user or --system, not both');
  const system = options.system ?? (!options.user && process.getuid?.() === 0);
  const configFile = resolveConfigFile(options.config);
  const dataDir = resolveDataDir(options.dataDir);
  // The plans must be readable now, and each needs its passphrase from somewhere the service can reach.
  const config = loadConfig(configFile);
  const unitDir = options.unitDir ?? (system ? '/etc/systemd/system' : path.join(process.env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config'), 'systemd', 'user'));
  const file = path.join(unitDir, 'coffer.service');
  if (fs.existsSync(file) && !options.force) throw new UsageError(`${file} exists; add --force to replace it`);
  const program = fs.realpathSync(process.argv[1]!);
  const unit = systemdUnit({ node: process.execPath, program, configFile, dataDir, system });
  fs.mkdirSync(unitDir, { recursive: true });
  fs.writeFileSync(file, unit, { mode: 0o644 });
  printLine(`wrote ${file}`);
  const ctl = system ? 'systemctl' : 'systemctl --user';
  printLine(`enable and start it with: ${ctl} daemon-reload && ${ctl} enable --now coffer`);
  if (!system) printLine(`so that it runs while you are logged out: loginctl enable-linger ${os.userInfo().username}`);
  printLine(`follow it with: ${system ? 'journalctl' : 'journalctl --user'} -u coffer -f   ·   coffer jobs`);
  const noPassphrase = Object.entries(config.plans).filter(([, p]) => !p.passwordFile && !p.passwordCommand).map(([name]) => name);
  if (noPassphrase.length > 0) printWarning(`plans ${noPassphrase.join(', ')} have no passwordFile or passwordCommand; the service has no COFFER_PASSWORD, so add one of them to each plan`);
  if (Object.keys(config.plans).length === 0) printWarning(`${configFile} has no plans yet; coffer setup writes one`);
}

async function daemonStatus(options: DaemonOptions & { json?: boolean }): Promise<void> {
  const dataDir = resolveDataDir(options.dataDir);
  let status: DaemonStatus;
  try {
    status = (await controlRequest(dataDir, 'GET', '/v1/status')) as DaemonStatus;
  } catch (err) {
    if (!(err instanceof DaemonUnreachableError)) throw err;
    if (options.json) printJson({ type: 'daemon-status', running: false, dataDir, reason: err.message });
    else printLine(`not running: ${err.message}`);
    // As systemctl and LSB scripts say it: 3 for "not running".
    process.exitCode = 3;
    return;
  }
  if (options.json) return printJson({ ...status, running: true });
  const running = status.jobs.filter((j) => j.state === 'running' || j.state === 'paused').length;
  const queued = status.jobs.filter((j) => j.state === 'queued').length;
  printLine(`running: pid ${status.pid}, coffer ${status.version}, up ${formatDuration((status.now - status.startedAt) / 1000)}${status.paused ? ', PAUSED (coffer resume --all)' : ''}`);
  printLine(`jobs: ${running} running, ${queued} queued, at most ${status.concurrency} at once; coffer jobs shows them`);
  for (const s of status.schedules) printLine(`  plan ${s.plan}: next run ${formatTime(s.nextRun)}`);
}

export function daemonCommand(): Command {
  const common = (cmd: Command): Command =>
    usesEnvironment(cmd, ['COFFER_CONFIG', 'COFFER_DATA_DIR'])
      .option('--config <file>', 'configuration file (default $COFFER_CONFIG or ~/.config/coffer/config.yaml)')
      .option('--data-dir <dir>', 'the job database, run logs and control socket (default $COFFER_DATA_DIR or ~/.local/share/coffer)');
  const install = common(new Command('install').description('write a systemd unit that runs the daemon, and say how to enable it'))
    .option('--user', 'a user service (~/.config/systemd/user; the default unless root)')
    .option('--system', 'a system service (/etc/systemd/system; the default as root)')
    .option('--unit-dir <dir>', 'write the unit into this directory instead')
    .option('--force', 'replace an existing unit file')
    .action((options: InstallOptions) => installUnit(options));
  const status = usesEnvironment(new Command('status'), ['COFFER_DATA_DIR'])
    .description('whether the daemon runs, with its jobs and next runs (exit 3 when it does not run)')
    .option('--data-dir <dir>', 'the data directory the daemon uses (default $COFFER_DATA_DIR or ~/.local/share/coffer)')
    .option('--json', 'machine-readable output (JSON lines, see docs/JSON.md)')
    .action((options: DaemonOptions & { json?: boolean }) => daemonStatus(options));
  return common(new Command('daemon').description('run the plans on their schedules (in the foreground; see daemon install)'))
    .addCommand(install)
    .addCommand(status)
    .action((options: DaemonOptions) => runDaemon(options));
}
