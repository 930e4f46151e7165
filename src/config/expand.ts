// `~` and `$VARS` in the configuration file and in exclude files, as a shell would expand them (restic
// expands variables in exclude files, borgmatic in its configuration).
import os from 'node:os';

export class UnsetVariableError extends Error {
  override name = 'UnsetVariableError';
  readonly variable: string;

  constructor(variable: string) {
    super(`$${variable} is not set`);
    this.variable = variable;
  }
}

/**
 * `~` alone or at the start of `~/…` becomes the home directory; `$NAME` and `${NAME}` the variable's
 * value; `$$` is a literal `$`, and a `$` before anything else stays as it is. An unset variable is an
 * error rather than an empty string: a path with a hole in it would back up or skip the wrong files.
 */
export function expandVariables(text: string, env: NodeJS.ProcessEnv = process.env, home: string = os.homedir()): string {
  const withHome = text === '~' ? home : text.startsWith('~/') ? `${home}${text.slice(1)}` : text;
  return withHome.replace(/\$(?:\$|\{([A-Za-z_]\w*)\}|([A-Za-z_]\w*))/g, (match, braced: string | undefined, bare: string | undefined) => {
    if (match === '$$') return '$';
    const name = (braced ?? bare)!;
    const value = env[name];
    if (value === undefined) throw new UnsetVariableError(name);
    return value;
  });
}

/** An absolute path or a location written so that expandVariables gives it back unchanged. */
export function escapeVariables(text: string): string {
  return text.replaceAll('$', () => '$$');
}
