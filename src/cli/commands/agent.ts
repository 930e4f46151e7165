// `coffer agent`: runs this machine's agent for a fleet server; `coffer agent install` writes a systemd
// unit for it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command, Option } from 'commander';
import { normalizeLabels } from '../../agent/labels.ts';
import { checkSpoolDirectory } from '../../engine/spool.ts';
import { systemdUnit } from '../../agent/systemd.ts';
import { resolveDataDir } from '../../jobs/index.ts';
import { describeError, isRetryable, UsageError } from '../errors.ts';
import { interruptSignal } from '../interrupt.ts';
import { printLine, printWarning } from '../output.ts';
import { fromFile, readPassphrase } from '../passphrase.ts';
import { capacityOf, reported } from './server.ts';

interface AgentOptions {
  readonly server?: string;
  readonly key?: string;
  readonly keyFile?: string;
  readonly stateDir?: string;
  readonly capacity: string;
  readonly transport: 'auto' | 'websocket' | 'poll';
  readonly passwordFile?: string;
  readonly passwordCommand?: string;
  readonly spoolDir?: string;
  readonly label?: string[];
}

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

/** The --label flags checked; undefined without any (the server's labels stay). */
function labelsOf(labels: string[] | undefined): string[] | undefined {
  return labels ? normalizeLabels(labels, (problem) => new UsageError(`--label: ${problem}`)) : undefined;
}

function serverOf(options: { server?: string }): string {
  const server = options.server ?? process.env.COFFER_SERVER;
  if (!server) throw new UsageError('no server given: use --server URL (e.g. https://backup.example.com) or COFFER_SERVER');
  if (!/^https?:\/\//i.test(server)) throw new UsageError(`--server ${server}: give the URL with its scheme, e.g. http://${server} or https://${server}`);
  if (!URL.canParse(server)) throw new UsageError(`--server ${server} is not a URL; use http(s)://host[:port]`);
  return server;
}

function keyOf(options: { key?: string; keyFile?: string }): string {
  const key = options.key ?? (options.keyFile ? fromFile(options.keyFile) : process.env.COFFER_AGENT_KEY);
  if (!key) throw new UsageError('no API key given: use --key-file FILE, COFFER_AGENT_KEY or --key KEY (create a key in the dashboard, under API keys)');
  if (!/^cof_[\w-]{20,}$/.test(key)) throw new UsageError('that is not a coffer API key (they start with cof_); copy it again from the dashboard');
  return key;
}

export function agentCommand(): Command {
  const agent = new Command('agent')
    .description('run this machine as an agent of a fleet server: it receives plans and jobs and reports progress')
    .option('--server <url>', 'the server (default $COFFER_SERVER)')
    .option('--key <key>', 'API key (visible to other local users in the process list: prefer --key-file or $COFFER_AGENT_KEY)')
    .option('--key-file <file>', 'read the API key from a file')
    .option('--state-dir <dir>', "where the agent keeps its id (default: 'agent' in the data directory)")
    .option('--capacity <n>', 'backups run at once', '2')
    .option('--label <label>', "a label of this agent (repeat for more): plans with workers 'agents with label L' use it for their shards; without any, the labels set on the server stay", collect)
    .addOption(new Option('--transport <kind>', 'how jobs arrive').choices(['auto', 'websocket', 'poll']).default('auto'))
    .option('--password-file <file>', 'repository passphrase from a file (else $COFFER_PASSWORD or --password-command)')
    .option('--password-command <command>', 'repository passphrase from a command')
    .option('--spool-dir <dir>', 'where packs wait on disk for slow destinations')
    .action(async (options: AgentOptions) => {
      const server = serverOf(options);
      const key = keyOf(options);
      if (options.key) printWarning('--key is visible in the process list; use --key-file or COFFER_AGENT_KEY on shared machines');
      const capacity = capacityOf(options.capacity);
      const labels = labelsOf(options.label);
      if (options.spoolDir) checkSpoolDirectory(options.spoolDir);
      if (!options.passwordFile && !options.passwordCommand && !process.env.COFFER_PASSWORD) {
        throw new UsageError('the agent needs the repository passphrase without asking: use --password-file, --password-command or COFFER_PASSWORD (it never leaves this machine)');
      }
      // Loaded here: the agent brings the engine, ws and the store backends, which other commands do not need.
      const { Agent } = await import('../../agent/agent.ts');
      const { AgentStoppedError, ServerError } = await import('../../agent/client.ts');
      const interrupt = interruptSignal();
      try {
        await reported(() => new Agent({
          server,
          key,
          stateDir: options.stateDir ?? path.join(resolveDataDir(undefined), 'agent'),
          capacity,
          transport: options.transport,
          passphrase: () => readPassphrase(options),
          signal: interrupt.signal,
          log: (message) => printLine(`${new Date().toISOString()} ${message}`),
          describeError,
          isRetryable,
          ...(options.spoolDir ? { spoolDir: options.spoolDir } : {}),
          ...(labels ? { labels } : {}),
        }).run(), [ServerError, AgentStoppedError]);
      } finally {
        interrupt.dispose();
      }
    });
  agent.addCommand(
    new Command('install')
      .description('write a systemd unit that runs the agent at boot')
      .option('--server <url>', 'the server (default $COFFER_SERVER)')
      .option('--key-file <file>', 'file holding the API key (mode 0600); created from --key or $COFFER_AGENT_KEY when missing')
      .option('--key <key>', 'API key to store in --key-file')
      .option('--password-file <file>', 'repository passphrase file for the agent')
      .option('--capacity <n>', 'backups run at once', '2')
      .option('--label <label>', 'a label of the agent (repeat for more)', collect)
      .option('--user <name>', 'run as this user (default root, which can read every file)')
      .option('--unit-file <file>', 'where to write the unit', '/etc/systemd/system/coffer-agent.service')
      .action((own: { server?: string; keyFile?: string; key?: string; passwordFile?: string; capacity: string; label?: string[]; user?: string; unitFile: string }) => {
        // Options spelled like the agent's own (--server, --key-file …) are parsed by `coffer agent` itself.
        const parent = Object.fromEntries(Object.entries(agent.opts()).filter(([name]) => agent.getOptionValueSource(name) === 'cli'));
        const options = { ...own, ...parent } as typeof own;
        const server = serverOf(options);
        if (!options.keyFile) throw new UsageError('give --key-file FILE: the unit reads the key from it (never from the command line)');
        const keyFile = path.resolve(options.keyFile);
        if (!fs.existsSync(keyFile)) {
          const key = keyOf({ ...(options.key ? { key: options.key } : {}) });
          fs.mkdirSync(path.dirname(keyFile), { recursive: true, mode: 0o700 });
          fs.writeFileSync(keyFile, `${key}\n`, { mode: 0o600 });
          printLine(`wrote the key to ${keyFile} (mode 0600)`);
        } else keyOf({ keyFile });
        if (!options.passwordFile) throw new UsageError('give --password-file FILE: a service cannot ask for the passphrase');
        const unit = systemdUnit({
          server,
          keyFile,
          passwordFile: path.resolve(options.passwordFile),
          capacity: capacityOf(options.capacity),
          ...(options.label ? { labels: labelsOf(options.label)! } : {}),
          user: options.user ?? 'root',
          node: process.execPath,
          // The program this process was started as (bin/coffer.js when installed), as `daemon install` does.
          coffer: fs.realpathSync(process.argv[1]!),
          home: options.user ? undefined : os.homedir(),
        });
        fs.mkdirSync(path.dirname(options.unitFile), { recursive: true });
        fs.writeFileSync(options.unitFile, unit, { mode: 0o644 });
        printLine(`wrote ${options.unitFile}; start it with: systemctl daemon-reload && systemctl enable --now ${path.basename(options.unitFile)}`);
      }),
  );
  return agent;
}
