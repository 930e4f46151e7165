// What ~/.ssh/config says about an SFTP host, the way ssh reads it: Host aliases with HostName, User,
// Port, IdentityFile and IdentityAgent (first value wins, IdentityFile accumulates, `Host *` gives
// defaults), Include of further files. The ssh-config package parses and matches; this module reads the files, expands
// Include and the tokens of IdentityFile, and refuses what Coffer cannot do (a proxy or jump host)
// instead of silently connecting somewhere else. `Match exec` is never run: looking up a host must
// not start programs.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import SSHConfig from 'ssh-config';
import { localUser, parseSftpLocation, sftpDisplayLocation, type SftpLocation } from './locations.ts';
import { StoreError } from './store.ts';

/** ssh stops at this depth too, which also ends an Include loop. */
const MAX_INCLUDE_DEPTH = 16;

export interface SshTarget {
  /** The host as the location names it (perhaps an alias), for messages. */
  readonly alias: string;
  /** Where to connect: HostName from the config, else the host as given. */
  readonly hostName: string;
  readonly user: string;
  readonly port: number;
  /** Absolute, or relative to the login directory. */
  readonly root: string;
  /** IdentityFile entries of the config, tokens and ~ expanded, in order. */
  readonly identityFiles: readonly string[];
  /** The agent's socket from IdentityAgent, 'none' for no agent; undefined for SSH_AUTH_SOCK. */
  readonly identityAgent?: string;
  /** 'ProxyJump x' or 'ProxyCommand y' when the config routes the host through one. */
  readonly proxy?: string;
}

/** The SFTP target of a location with ~/.ssh/config applied, and the store's name for it (which shows the host as written). */
export function sftpTarget(location: string, homeDir: string = os.homedir()): { target: SshTarget; display: string } {
  const target = resolveSftpTarget(parseSftpLocation(location), homeDir);
  return { target, display: sftpDisplayLocation({ user: target.user, host: target.alias, port: target.port, root: target.root }) };
}

/** Combines a parsed location with ~/.ssh/config under `homeDir`: the location wins where it says something. */
export function resolveSftpTarget(location: SftpLocation, homeDir: string): SshTarget {
  const config = readConfig(path.join(homeDir, '.ssh', 'config'), homeDir);
  const computed = config ? config.compute({ Host: location.host, ...(location.user ? { User: location.user } : {}) }, { ignoreCase: true, matchExec: false }) : {};
  const first = (key: string): string | undefined => {
    const value = computed[key];
    return Array.isArray(value) ? value[0] : value;
  };
  const hostName = first('hostname')?.replace(/%h/g, location.host) ?? location.host;
  const user = location.user ?? first('user') ?? localUser();
  const port = location.port ?? portOf(first('port'), location.host);
  const expand = (file: string): string => expandTokens(file, { homeDir, host: hostName, alias: location.host, user, port });
  const identityFiles = [computed.identityfile ?? []].flat().filter((file) => file.toLowerCase() !== 'none').map(expand);
  const agent = first('identityagent');
  const identityAgent = agent === undefined || agent === 'SSH_AUTH_SOCK' ? undefined : agent === 'none' ? 'none' : expand(agent.replace(/^"(.*)"$/, '$1'));
  const proxyJump = first('proxyjump');
  const proxyCommand = first('proxycommand');
  const proxy = proxyJump && proxyJump !== 'none' ? `ProxyJump ${proxyJump}` : proxyCommand && proxyCommand !== 'none' ? `ProxyCommand ${proxyCommand}` : undefined;
  return { alias: location.host, hostName, user, port, root: location.root, identityFiles, ...(identityAgent ? { identityAgent } : {}), ...(proxy ? { proxy } : {}) };
}

function portOf(value: string | undefined, host: string): number {
  if (value === undefined) return 22;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new StoreError('permanent', `~/.ssh/config gives host ${host} the port "${value}", which is not a port number`);
  return port;
}

/** The parsed config with every Include spliced in where it stands; undefined when there is no file. */
function readConfig(file: string, homeDir: string): SSHConfig | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new StoreError('permanent', `cannot read ${file} (${(err as NodeJS.ErrnoException).code})`, { cause: err });
  }
  try {
    return SSHConfig.parse(withIncludes(text, path.dirname(file), homeDir, 0));
  } catch (err) {
    if (err instanceof StoreError) throw err;
    throw new StoreError('permanent', `cannot parse ${file}: ${(err as Error).message.split('\n')[0]}`, { cause: err });
  }
}

/**
 * `text` with each Include line replaced by the files it names (relative names are in ~/.ssh, globs
 * match in sorted order, missing files are skipped), as ssh reads them.
 */
function withIncludes(text: string, sshDir: string, homeDir: string, depth: number): string {
  return text
    .split('\n')
    .map((line) => {
      const include = /^\s*include\s*(?:=\s*|\s)(.*)$/i.exec(line);
      if (!include) return line;
      if (depth >= MAX_INCLUDE_DEPTH) throw new StoreError('permanent', `~/.ssh/config: Include nests deeper than ${MAX_INCLUDE_DEPTH} files (a loop?)`);
      return include[1]!
        .trim()
        .split(/\s+/)
        .flatMap((pattern) => {
          const expanded = pattern.replace(/^~(?=\/|$)/, homeDir);
          return fs.globSync(path.isAbsolute(expanded) ? expanded : path.join(sshDir, expanded)).sort();
        })
        .map((included) => {
          try {
            return withIncludes(fs.readFileSync(included, 'utf8'), sshDir, homeDir, depth + 1);
          } catch (err) {
            if (err instanceof StoreError) throw err;
            // ssh skips what it cannot read (a directory matched by a glob, say).
            return '';
          }
        })
        .join('\n');
    })
    .join('\n');
}

interface TokenValues {
  readonly homeDir: string;
  readonly host: string;
  readonly alias: string;
  readonly user: string;
  readonly port: number;
}

/** ssh's ~ and %-tokens in a file name (ssh_config(5), TOKENS); unknown tokens stay as they are. */
function expandTokens(file: string, values: TokenValues): string {
  const tokens: Record<string, string> = {
    '%': '%',
    d: values.homeDir,
    h: values.host,
    n: values.alias,
    r: values.user,
    p: String(values.port),
    u: localUser(),
    l: os.hostname(),
  };
  return file.replace(/^~(?=\/|$)/, values.homeDir).replace(/%(.)/g, (whole, token: string) => tokens[token] ?? whole);
}
