// The error of a configuration file that cannot be used, in a module of its own: errors.ts recognises it
// on every failed command, and config-file.ts (with its YAML parser and schema) is too heavy to load for that.

export class ConfigError extends Error {
  override name = 'ConfigError';
}
