import { Command } from 'commander';
import fs from 'node:fs';
import os from 'node:os';
import { testWrite } from '../../engine/test-write.ts';
import { checkSpoolDirectory } from '../../engine/spool.ts';
import { CHUNK_THREAD_BYTES, RESTORE_THREAD_BYTES, threadLimit, usableMemory } from '../../engine/thread-budget.ts';
import { loadConfig, resolveConfigFile } from '../../config/config-file.ts';
import { JobStore, resolveDataDir } from '../../jobs/index.ts';
import { redactString } from '../../jobs/redact.ts';
import { readConfig, Repository } from '../../repo/repository.ts';
import type { Store } from '../../store/store.ts';
import { usesEnvironment } from '../environment-help.ts';
import { EXIT_FATAL } from '../exit-codes.ts';
import { count, formatBytes } from '../format.ts';
import { printJson, printLine } from '../output.ts';
import { passphraseSource, type PassphraseSource } from '../passphrase.ts';
import { addRepoOptions, openConfiguredStore, repositorySettings, type RepoOptions, type RepositorySettings } from '../repo-options.ts';

interface Check {
  readonly name: string;
  readonly ok: boolean;
  /** What was found, or what to do about it. */
  readonly detail: string;
}

const MIN_SPOOL_FREE = 1024 ** 3;

function nodeVersion(): Check {
  const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
  const ok = major > 24 || (major === 24 && minor >= 7);
  return { name: 'node', ok, detail: ok ? `Node.js ${process.version}` : `Node.js ${process.version} is too old: Coffer needs 24.7 or newer (run it through npx or the installed coffer)` };
}

/** The spool's directory (--spool-dir, else the temporary directory): usable, and with room for packs. */
function spoolSpace(flag: string | undefined): Check {
  const dir = flag ?? os.tmpdir();
  try {
    checkSpoolDirectory(dir);
  } catch (err) {
    return { name: 'spool', ok: false, detail: `${(err as Error).message}${flag ? '' : '; give backups --spool-dir'}` };
  }
  const st = fs.statfsSync(dir);
  const free = st.bavail * st.bsize;
  return { name: 'spool', ok: free >= MIN_SPOOL_FREE, detail: `${dir}: ${formatBytes(free)} free${free >= MIN_SPOOL_FREE ? '' : ` (needs ${formatBytes(MIN_SPOOL_FREE)}; use --spool-dir elsewhere)`}` };
}

/** How many worker threads a backup and a restore start here, and why: the cores, or the memory. */
function threads(): Check {
  const memory = usableMemory();
  const limited = memory < os.totalmem() ? ' (its cgroup limit)' : '';
  const chunk = threadLimit(CHUNK_THREAD_BYTES);
  const restore = threadLimit(RESTORE_THREAD_BYTES);
  return {
    name: 'threads',
    ok: true,
    detail: `backups read with ${count(chunk, 'thread')}, restores write with ${count(restore, 'thread')} (${count(os.availableParallelism(), 'core')}, ${formatBytes(memory)} of memory${limited})`,
  };
}

function dataDirectory(flag: string | undefined): Check {
  const dir = resolveDataDir(flag);
  try {
    JobStore.open(dir).close();
    fs.accessSync(dir, fs.constants.W_OK);
    return { name: 'data directory', ok: true, detail: `${dir}: job database opens` };
  } catch (err) {
    return { name: 'data directory', ok: false, detail: `${dir}: ${(err as Error).message}; use --data-dir or COFFER_DATA_DIR` };
  }
}

function configuration(flag: string | undefined): Check {
  const file = resolveConfigFile(flag);
  try {
    const plans = Object.keys(loadConfig(file).plans);
    return { name: 'config', ok: true, detail: fs.existsSync(file) ? `${file}: ${count(plans.length, 'plan')}${plans.length ? ` (${plans.join(', ')})` : ''}` : `${file}: none yet (coffer setup writes one)` };
  } catch (err) {
    return { name: 'config', ok: false, detail: (err as Error).message };
  }
}

async function destination(store: Store): Promise<Check[]> {
  const checks: Check[] = [];
  const probe = await testWrite(store);
  checks.push({ name: `write ${store.location}`, ok: probe.ok, detail: probe.ok ? `test-write passed in ${probe.ms.toFixed(0)} ms` : `test-write failed: ${probe.error}` });
  if (!probe.ok) return checks;
  try {
    const config = await readConfig(store);
    checks.push({ name: `repository ${store.location}`, ok: true, detail: `repository ${config.id.slice(0, 8)}, format version ${config.version}` });
  } catch (err) {
    checks.push({ name: `repository ${store.location}`, ok: false, detail: `${(err as Error).message}` });
  }
  return checks;
}

async function passphrase(options: RepoOptions, settings: RepositorySettings, stores: Store[]): Promise<Check> {
  let source: PassphraseSource | undefined;
  let text: string;
  try {
    source = passphraseSource(options, settings.passphrase);
    if (!source) return { name: 'passphrase', ok: false, detail: 'no passphrase source: use --password-file, --password-command, a plan\'s passwordFile or passwordCommand, COFFER_PASSWORD_FILE, COFFER_PASSWORD_COMMAND or COFFER_PASSWORD (or type it when asked)' };
    text = source.read();
  } catch (err) {
    return { name: 'passphrase', ok: false, detail: (err as Error).message };
  }
  if (stores.length === 0) return { name: 'passphrase', ok: true, detail: `from ${source.label}` };
  try {
    await Repository.open(stores, text);
    return { name: 'passphrase', ok: true, detail: `from ${source.label}; it opens the repository` };
  } catch (err) {
    return { name: 'passphrase', ok: false, detail: `from ${source.label}: ${(err as Error).message}` };
  }
}

/** Test-writes every destination, reads its repository, and tries the passphrase on those that hold one. */
async function repositoryChecks(options: RepoOptions, settings: RepositorySettings): Promise<Check[]> {
  const checks: Check[] = [];
  const stores: Store[] = [];
  for (const location of settings.locations) {
    try {
      stores.push(openConfiguredStore(location, settings.limits));
    } catch (err) {
      // The location as given may hold a password (rest:https://user:password@host/).
      checks.push({ name: `location ${redactString(location)}`, ok: false, detail: redactString((err as Error).message) });
    }
  }
  try {
    for (const store of stores) checks.push(...(await destination(store)));
    const usable = stores.filter((s) => checks.some((c) => c.name === `repository ${s.location}` && c.ok));
    checks.push(await passphrase(options, settings, usable));
  } finally {
    await Promise.all(stores.map((s) => s.close()));
  }
  return checks;
}

/** Whether the command line or the environment names a repository; without one, doctor checks every plan. */
function namesRepository(options: DoctorOptions, env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(options.repo?.length || options.plan || env.COFFER_REPO || env.COFFER_REPOSITORY_FILE);
}

interface DoctorOptions extends RepoOptions {
  readonly dataDir?: string;
  readonly spoolDir?: string;
}

/** The plans of the configuration file, or none when it cannot be read (the config check says why). */
function planNames(configFlag: string | undefined): string[] {
  try {
    return Object.keys(loadConfig(resolveConfigFile(configFlag)).plans);
  } catch {
    return [];
  }
}

export function doctorCommand(): Command {
  const command = addRepoOptions(
    new Command('doctor').description('check prerequisites: Node, worker threads, data directory, configuration, spool space, and for --repo or --plan (else every plan) each destination (test-write) and the passphrase'),
    { upload: true },
  ).option('--data-dir <dir>', 'the job database and run logs (default $COFFER_DATA_DIR or ~/.local/share/coffer)')
    .option('--spool-dir <dir>', 'the spool directory backups will be given (default: the temporary directory)');
  return usesEnvironment(command, ['COFFER_DATA_DIR']).action(async (options: DoctorOptions) => {
    const checks: Check[] = [nodeVersion(), threads(), dataDirectory(options.dataDir), configuration(options.config), spoolSpace(options.spoolDir)];
    const targets = namesRepository(options) ? [{ label: '', options }] : planNames(options.config).map((plan) => ({ label: `plan ${plan}: `, options: { ...options, plan } }));
    for (const target of targets) {
      try {
        const found = await repositoryChecks(target.options, await repositorySettings(target.options));
        checks.push(...found.map((c) => ({ ...c, name: `${target.label}${c.name}` })));
      } catch (err) {
        checks.push({ name: `${target.label}repository`, ok: false, detail: redactString((err as Error).message) });
      }
    }
    const failed = checks.filter((c) => !c.ok).length;
    for (const c of checks) {
      if (options.json) printJson({ type: 'check', ...c });
      else printLine(`${c.ok ? 'ok  ' : 'FAIL'}  ${c.name}: ${c.detail}`);
    }
    if (options.json) printJson({ type: 'summary', checks: checks.length, failed, ok: failed === 0 });
    else if (targets.length === 0) printLine('no repository checked: give --repo or --plan, or write a plan with coffer setup');
    if (failed > 0) process.exitCode = EXIT_FATAL;
  });
}
