// The environment variables Coffer reads, for the "Environment:" section of --help: the program's help
// lists all of them, each command's help those it uses.
import type { Command } from 'commander';

export const ENVIRONMENT = {
  COFFER_REPO: 'repository location when neither --repo nor --plan is given',
  COFFER_REPOSITORY_FILE: 'a file with the repository location(s), one per line (instead of COFFER_REPO)',
  COFFER_PASSWORD_FILE: 'read the passphrase from this file',
  COFFER_PASSWORD_COMMAND: 'run this command (with /bin/sh) to get the passphrase',
  COFFER_PASSWORD: 'the passphrase itself',
  COFFER_NEW_PASSWORD: 'the new passphrase of key add and key passwd',
  COFFER_CONFIG: 'configuration file (default ~/.config/coffer/config.yaml)',
  COFFER_DATA_DIR: 'job database and run logs (default ~/.local/share/coffer)',
  AWS_ACCESS_KEY_ID: 'S3 access key (with AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN)',
  AWS_SECRET_ACCESS_KEY: 'S3 secret key',
  AWS_PROFILE: 'S3 credentials and region from this profile of ~/.aws/config and ~/.aws/credentials',
  AWS_REGION: 'S3 region, when the endpoint does not name one (or AWS_DEFAULT_REGION)',
  COFFER_CACERT: 'a PEM file of CA certificates trusted for HTTPS (S3, REST), as --cacert',
  COFFER_SFTP_KEY: 'SFTP private key file (else ssh-agent, ~/.ssh/config, ~/.ssh/id_*)',
  SSH_AUTH_SOCK: 'ssh-agent holding the SFTP keys',
  COFFER_SFTP_PASSWORD: 'SFTP password, instead of a key',
  COFFER_SFTP_KNOWN_HOSTS: 'known_hosts file for SFTP, or accept-new to trust a host on first use',
  COFFER_REST_USERNAME: 'user of a rest: location (with COFFER_REST_PASSWORD)',
  COFFER_REST_PASSWORD: 'password of a rest: location',
  COFFER_RCLONE: 'the rclone program for rclone: locations (default: rclone on the PATH)',
  COFFER_CACHE_DIR: 'local cache of remote repositories, as --cache-dir (default $XDG_CACHE_HOME/coffer or ~/.cache/coffer)',
  COFFER_WEBDAV_PASSWORD: 'password of serve webdav on an address other than loopback',
  COFFER_DEBUG: 'print the stack trace of an unexpected error',
} as const;

export type EnvironmentVariable = keyof typeof ENVIRONMENT;

/** What every command that opens a repository reads. */
export const REPOSITORY_ENVIRONMENT: readonly EnvironmentVariable[] = ['COFFER_REPO', 'COFFER_REPOSITORY_FILE', 'COFFER_PASSWORD_FILE', 'COFFER_PASSWORD_COMMAND', 'COFFER_PASSWORD', 'COFFER_CONFIG'];
/** What opening a store reads, whatever the command. */
export const STORE_ENVIRONMENT: readonly EnvironmentVariable[] = [
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_PROFILE',
  'AWS_REGION',
  'COFFER_CACERT',
  'COFFER_SFTP_KEY',
  'SSH_AUTH_SOCK',
  'COFFER_SFTP_PASSWORD',
  'COFFER_SFTP_KNOWN_HOSTS',
  'COFFER_REST_USERNAME',
  'COFFER_REST_PASSWORD',
  'COFFER_RCLONE',
  'COFFER_CACHE_DIR',
];

/** The "Environment:" section for `names` (all variables when omitted). */
export function environmentHelp(names: readonly EnvironmentVariable[] = Object.keys(ENVIRONMENT) as EnvironmentVariable[]): string {
  const width = Math.max(...names.map((n) => n.length));
  return `\nEnvironment:\n${names.map((n) => `  ${n.padEnd(width)}  ${ENVIRONMENT[n]}`).join('\n')}`;
}

/**
 * Adds `names` to the variables listed in the command's help (several option groups each add theirs;
 * the section is rendered once, in the order they were added).
 */
export function usesEnvironment(command: Command, names: readonly EnvironmentVariable[]): Command {
  const listed = listedVariables(command);
  const fresh = names.filter((n) => !listed.includes(n));
  if (listed.length === 0 && fresh.length > 0) command.addHelpText('after', () => environmentHelp(listedVariables(command)));
  listed.push(...fresh);
  return command;
}

const variablesOf = new WeakMap<Command, EnvironmentVariable[]>();

function listedVariables(command: Command): EnvironmentVariable[] {
  let list = variablesOf.get(command);
  if (!list) variablesOf.set(command, (list = []));
  return list;
}
