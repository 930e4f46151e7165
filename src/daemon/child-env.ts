// The environment of the programs the daemon starts (hooks, dump tools): its own, without the
// repository passphrase and the storage secrets it was given.

const WITHHELD = /^(COFFER_PASSWORD|COFFER_NEW_PASSWORD|COFFER_SFTP_PASSWORD|AWS_SECRET_ACCESS_KEY|AWS_SESSION_TOKEN)$/;

export function childEnvironment(extra: Record<string, string> = {}): Record<string, string> {
  const inherited = Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined && !WITHHELD.test(e[0]));
  return { ...Object.fromEntries(inherited), ...extra };
}
