// Where coffer keeps its own state (job database, run logs): never inside a repository.
import os from 'node:os';
import path from 'node:path';

/** `--data-dir`, else COFFER_DATA_DIR, else $XDG_DATA_HOME/coffer, else ~/.local/share/coffer. */
export function resolveDataDir(flag: string | undefined, env: NodeJS.ProcessEnv = process.env, home: string = os.homedir()): string {
  const explicit = flag ?? env.COFFER_DATA_DIR;
  if (explicit !== undefined && explicit !== '') return path.resolve(explicit);
  // The XDG spec says a relative XDG_DATA_HOME is invalid and must be ignored.
  const xdg = env.XDG_DATA_HOME;
  const base = xdg !== undefined && path.isAbsolute(xdg) ? xdg : path.join(home, '.local', 'share');
  return path.join(base, 'coffer');
}
