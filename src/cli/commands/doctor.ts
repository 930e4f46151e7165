import { Command } from 'commander';
import fs from 'node:fs';
import os from 'node:os';
import { testWrite } from '../../engine/test-write.ts';
import { loadConfig, planFrom, resolveConfigFile } from '../../config/config-file.ts';
import { JobStore, resolveDataDir } from '../../jobs/index.ts';
import { redactString } from '../../jobs/redact.ts';
import { readConfig, Repository } from '../../repo/repository.ts';
import type { Store } from '../../store/store.ts';
import { EXIT_FATAL } from '../errors.ts';
import { formatBytes } from '../format.ts';
import { printJson, printLine } from '../output.ts';
import { fromCommand, fromFile } from '../passphrase.ts';
import { addRepoOptions, openConfiguredStore, type RepoOptions } from '../repo-options.ts';

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

function spoolSpace(): Check {
  const dir = os.tmpdir();
  try {
    fs.accessSync(dir, fs.constants.W_OK);
    const st = fs.statfsSync(dir);
    const free = st.bavail * st.bsize;
    return { name: 'spool', ok: free >= MIN_SPOOL_FREE, detail: `${dir}: ${formatBytes(free)} free${free >= MIN_SPOOL_FREE ? '' : ` (needs ${formatBytes(MIN_SPOOL_FREE)}; use --spool-dir elsewhere)`}` };
  } catch (err) {
    return { name: 'spool', ok: false, detail: `${dir} is not writable (${(err as Error).message}); use --spool-dir` };
  }
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
    return { name: 'config', ok: true, detail: fs.existsSync(file) ? `${file}: ${plans.length} plans${plans.length ? ` (${plans.join(', ')})` : ''}` : `${file}: none yet (coffer setup writes one)` };
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

async function passphrase(options: RepoOptions, stores: Store[]): Promise<Check | undefined> {
  let source: string;
  let text: string;
  try {
    if (options.passwordFile) [source, text] = [`--password-file ${options.passwordFile}`, fromFile(options.passwordFile)];
    else if (options.passwordCommand) [source, text] = ['--password-command', fromCommand(options.passwordCommand)];
    else if (process.env.COFFER_PASSWORD) [source, text] = ['COFFER_PASSWORD', process.env.COFFER_PASSWORD];
    else return { name: 'passphrase', ok: false, detail: 'no passphrase source: set COFFER_PASSWORD, --password-file or --password-command (or type it when asked)' };
  } catch (err) {
    return { name: 'passphrase', ok: false, detail: (err as Error).message };
  }
  if (stores.length === 0) return { name: 'passphrase', ok: true, detail: `from ${source}` };
  try {
    await Repository.open(stores, text);
    return { name: 'passphrase', ok: true, detail: `from ${source}; it opens the repository` };
  } catch (err) {
    return { name: 'passphrase', ok: false, detail: `from ${source}: ${(err as Error).message}` };
  }
}

interface DoctorOptions extends RepoOptions {
  readonly dataDir?: string;
  readonly config?: string;
  readonly plan?: string;
}

/** The plan's destinations and passphrase source, unless the command line gives its own. */
function withPlan(options: DoctorOptions): DoctorOptions {
  if (!options.plan) return options;
  const file = resolveConfigFile(options.config);
  const plan = planFrom(loadConfig(file), options.plan, file);
  return {
    ...options,
    repo: options.repo?.length ? options.repo : plan.repos,
    limitUpload: [...plan.limitUpload, ...options.limitUpload],
    limitDownload: [...plan.limitDownload, ...options.limitDownload],
    cacert: [...(plan.cacert ?? []), ...(options.cacert ?? [])],
    insecureTls: options.insecureTls ?? plan.insecureTls,
    ...(options.passwordFile || options.passwordCommand ? {} : { passwordFile: plan.passwordFile, passwordCommand: plan.passwordCommand }),
  };
}

export function doctorCommand(): Command {
  return addRepoOptions(new Command('doctor').description('check prerequisites: Node, data directory, configuration, spool space, each destination (test-write), the passphrase'))
    .option('--data-dir <dir>', 'the job database and run logs (default $COFFER_DATA_DIR or ~/.local/share/coffer)')
    .option('--config <file>', 'configuration file (default $COFFER_CONFIG or ~/.config/coffer/config.yaml)')
    .option('--plan <name>', "check a plan's destinations and passphrase source")
    .action(async (given: DoctorOptions) => {
      const options = withPlan(given);
      const locations = options.repo?.length ? options.repo : process.env.COFFER_REPO ? [process.env.COFFER_REPO] : [];
      const checks: Check[] = [nodeVersion(), dataDirectory(options.dataDir), configuration(options.config), spoolSpace()];
      const stores: Store[] = [];
      for (const location of locations) {
        try {
          stores.push(openConfiguredStore(location, options));
        } catch (err) {
          // The location as given may hold a password (rest:https://user:password@host/).
          checks.push({ name: `location ${redactString(location)}`, ok: false, detail: (err as Error).message });
        }
      }
      try {
        for (const store of stores) checks.push(...(await destination(store)));
        const usable = stores.filter((s) => checks.some((c) => c.name === `repository ${s.location}` && c.ok));
        const pass = await passphrase(options, usable);
        if (pass) checks.push(pass);
      } finally {
        await Promise.all(stores.map((s) => s.close()));
      }
      for (const c of checks) {
        if (options.json) printJson({ type: 'check', ...c });
        else printLine(`${c.ok ? 'ok  ' : 'FAIL'}  ${c.name}: ${c.detail}`);
      }
      if (checks.some((c) => !c.ok)) process.exitCode = EXIT_FATAL;
    });
}
