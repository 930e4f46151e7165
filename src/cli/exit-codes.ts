// Exit codes (docs/JSON.md lists them for scripts) and the error for a mistaken invocation. Every command
// loads this module, so it imports nothing: the classes that errors.ts maps to codes pull in whole layers.

export const EXIT_OK = 0;
/** Any failure not listed below; stderr has one line saying what went wrong and what to do. */
export const EXIT_FATAL = 1;
/**
 * The snapshot was made but some source files could not be read (they are listed). Takes precedence over
 * EXIT_PARTIAL when both apply: a missed destination catches up by itself at the next backup or
 * `coffer sync`, unreadable files need a person.
 */
export const EXIT_INCOMPLETE = 3;
/** The snapshot was committed on some destinations only; the others need `coffer sync` or the next backup. */
export const EXIT_PARTIAL = 4;
/** The location holds no repository (as restic 0.17+). */
export const EXIT_NO_REPOSITORY = 10;
/** No key of the repository opens with the passphrase (as restic 0.17+). */
export const EXIT_WRONG_PASSPHRASE = 12;
/** Stopped by Ctrl-C or SIGTERM. */
export const EXIT_INTERRUPTED = 130;

/** A mistake in how the command was called: bad option values, missing arguments. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** The user stopped the command before it changed anything (Ctrl-C at a prompt): exit 130. */
export class CancelledError extends Error {
  override name = 'CancelledError';
}
