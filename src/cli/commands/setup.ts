import { Command } from 'commander';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { loadConfig, resolveConfigFile, savePlan, type PlanConfig, type PlanInput } from '../../config/config-file.ts';
import { escapeVariables, expandVariables } from '../../config/expand.ts';
import { SyncRun } from '../../engine/sync.ts';
import { testWrite } from '../../engine/test-write.ts';
import { initRepository, readConfig, Repository } from '../../repo/repository.ts';
import type { Store } from '../../store/store.ts';
import { makeDirectories } from '../../store/make-directories.ts';
import { canonicalLocation } from '../../store/open-store.ts';
import { CancelledError, UsageError } from '../exit-codes.ts';
import { printLine } from '../output.ts';
import { fromCommand, fromFile } from '../passphrase.ts';
import { openConfiguredStore } from '../repo-options.ts';

/** Questions on stdout, answers line by line from stdin: works on a terminal and when driven by a script. */
class Prompter {
  private readonly rl = readline.createInterface({ input: process.stdin, terminal: false });
  private readonly lines = this.rl[Symbol.asyncIterator]();

  async ask(question: string, fallback = ''): Promise<string> {
    process.stdout.write(`${question}${fallback ? ` [${fallback}]` : ''}: `);
    const next = await this.nextLine();
    if (next.done) throw new UsageError('setup stopped: no more answers on the input');
    return next.value.trim() || fallback;
  }

  /** The next answer; Ctrl-C while waiting for it cancels the wizard with one line (exit 130). */
  private nextLine(): Promise<IteratorResult<string>> {
    let onInterrupt = (): void => {};
    const interrupted = new Promise<never>((_resolve, reject) => {
      onInterrupt = () => {
        process.stdout.write('\n');
        reject(new CancelledError('setup cancelled; the plan was not saved'));
      };
      process.once('SIGINT', onInterrupt);
    });
    return Promise.race([this.lines.next(), interrupted]).finally(() => process.off('SIGINT', onInterrupt));
  }

  async confirm(question: string, yes = true): Promise<boolean> {
    for (;;) {
      const answer = (await this.ask(`${question} (${yes ? 'Y/n' : 'y/N'})`)).toLowerCase();
      if (answer === '') return yes;
      if (['y', 'yes'].includes(answer)) return true;
      if (['n', 'no'].includes(answer)) return false;
      printLine('  please answer y or n');
    }
  }

  /** Answers until an empty line. */
  async list(question: string, accept: (answer: string) => Promise<string | undefined>): Promise<string[]> {
    const answers: string[] = [];
    for (;;) {
      const answer = await this.ask(`${question}${answers.length ? ' (empty line to finish)' : ''}`);
      if (answer === '') {
        if (answers.length > 0) return answers;
        printLine('  at least one is needed');
        continue;
      }
      const problem = await accept(answer).catch((err: Error) => err.message);
      if (problem) printLine(`  ${problem}`);
      else answers.push(answer);
    }
  }

  close(): void {
    this.rl.close();
  }
}

type PassphraseSource = Pick<PlanConfig, 'passwordFile' | 'passwordCommand'>;

/** Where the passphrase comes from; never the passphrase itself (it is not written to the configuration). */
async function choosePassphraseSource(ask: Prompter, configFile: string): Promise<{ source: PassphraseSource; passphrase: string }> {
  for (;;) {
    const choice = await ask.ask('where does the passphrase come from? 1) the COFFER_PASSWORD variable 2) a file 3) a command (pass, op, …)', '2');
    if (choice === '1') {
      const env = process.env.COFFER_PASSWORD;
      if (env) return { source: {}, passphrase: env };
      printLine('  COFFER_PASSWORD is not set; set it and run setup again, or choose 2 or 3');
    } else if (choice === '2') {
      const file = path.resolve(await ask.ask('passphrase file', path.join(path.dirname(configFile), 'passphrase')));
      if (!fs.existsSync(file)) {
        if (!(await ask.confirm(`${file} does not exist; create it with a new random passphrase?`))) continue;
        makeDirectories(path.dirname(file), 0o700);
        fs.writeFileSync(file, `${crypto.randomBytes(24).toString('base64url')}\n`, { mode: 0o600 });
        printLine(`  wrote a new passphrase to ${file}; keep a copy somewhere safe: without it the backups cannot be read`);
      }
      try {
        return { source: { passwordFile: file }, passphrase: fromFile(file) };
      } catch (err) {
        printLine(`  ${(err as Error).message}`);
      }
    } else if (choice === '3') {
      const command = await ask.ask('command that prints the passphrase');
      try {
        return { source: { passwordCommand: command }, passphrase: fromCommand(command) };
      } catch (err) {
        printLine(`  ${(err as Error).message}`);
      }
    } else {
      printLine('  answer 1, 2 or 3');
    }
  }
}

/** Creates the repository everywhere, or opens the existing one and copies it to the new locations. */
async function prepareRepository(ask: Prompter, stores: Store[], passphrase: string): Promise<void> {
  const existing: Store[] = [];
  for (const store of stores) if (await readConfig(store).then(() => true, () => false)) existing.push(store);
  if (existing.length === 0) {
    if (!(await ask.confirm(`create a new repository at ${stores.length === 1 ? 'this destination' : `these ${stores.length} destinations`}?`))) {
      throw new UsageError('setup cancelled: no repository to back up to');
    }
    const config = await initRepository(stores, passphrase);
    printLine(`  created repository ${config.id.slice(0, 8)}`);
    return;
  }
  // Opening proves the passphrase and that the existing locations are one repository (their stores stay
  // open for the copy below and are closed by the wizard).
  await Repository.open(existing, passphrase);
  const fresh = stores.filter((s) => !existing.includes(s));
  if (fresh.length === 0) return;
  printLine(`  copying the repository to ${fresh.map((s) => s.location).join(', ')}`);
  const results = await new SyncRun(existing[0]!, fresh).run();
  const failed = results.find((r) => r.error);
  if (failed) throw new UsageError(`copying to ${failed.location} failed: ${failed.error}`);
}

export function setupCommand(): Command {
  return new Command('setup')
    .description('interactive wizard: a plan in the configuration file, its repository and destinations (each test-written)')
    .option('--config <file>', 'configuration file (default $COFFER_CONFIG or ~/.config/coffer/config.yaml)')
    .action(async (options: { config?: string }) => {
      const configFile = resolveConfigFile(options.config);
      const config = loadConfig(configFile);
      const ask = new Prompter();
      const stores: Store[] = [];
      try {
        printLine(`Coffer setup: the plan goes to ${configFile}`);
        let name: string;
        for (;;) {
          name = await ask.ask('plan name', Object.keys(config.plans).length ? '' : 'home');
          if (!/^[\w.-]+$/.test(name)) printLine('  use letters, digits, ., _ and -');
          else if (!config.plans[name] || (await ask.confirm(`plan ${name} exists; replace it?`, false))) break;
        }
        const paths: string[] = [];
        await ask.list('folder or file to back up', async (answer) => {
          const p = path.resolve(expandVariables(answer));
          if (!fs.existsSync(p)) return `${p} does not exist`;
          paths.push(p);
          return undefined;
        });
        await ask.list('destination (a directory, s3:host/bucket/prefix, sftp:user@host:path, rest:https://host/path/ or rclone:remote:path)', async (location) => {
          let store: Store;
          try {
            store = openConfiguredStore(canonicalLocation(expandVariables(location)), {});
          } catch (err) {
            return (err as Error).message;
          }
          if (stores.some((s) => s.location === store.location)) {
            await store.close();
            return `${store.location} is already a destination of this plan`;
          }
          const probe = await testWrite(store);
          if (!probe.ok) {
            await store.close();
            return `test-write failed: ${probe.error}; try another destination`;
          }
          printLine(`  test-write passed (${probe.ms.toFixed(0)} ms)`);
          stores.push(store);
          return undefined;
        });
        const { source, passphrase } = await choosePassphraseSource(ask, configFile);
        await prepareRepository(ask, stores, passphrase);
        // Stored as absolute paths and canonical locations, with any $ escaped: the configuration
        // expands variables and resolves relative paths against its own directory.
        const plan: PlanInput = {
          repos: stores.map((s) => escapeVariables(s.location)),
          paths: paths.map(escapeVariables),
          ...(source.passwordFile ? { passwordFile: escapeVariables(source.passwordFile) } : {}),
          ...(source.passwordCommand ? { passwordCommand: source.passwordCommand } : {}),
        };
        savePlan(configFile, name, plan);
        printLine(`saved plan ${name} to ${configFile}; run it with: coffer backup --plan ${name}`);
      } finally {
        ask.close();
        await Promise.all(stores.map((s) => s.close()));
      }
    });
}
