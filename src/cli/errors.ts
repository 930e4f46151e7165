// Turning any failure into one line for the user and an exit code; never a stack trace. Loaded when a
// command fails (or by one that needs isRetryable): it imports the error classes of every layer.
import { FormatError } from '../format/bytes.ts';
import { UnsupportedVersionError } from '../format/config.ts';
import { AuthenticationError } from '../format/crypto.ts';
import { BackupError } from '../engine/backup/backup.ts';
import { NoDestinationLeftError } from '../engine/backup/pack-sink.ts';
import { DetachedError } from '../engine/destination.ts';
import { NoRepositoryError, RepositoryError, WrongPassphraseError } from '../repo/repository.ts';
import { ConfigError } from '../config/config-error.ts';
import { CredentialsError } from '../daemon/credentials.ts';
import { ControlError, DaemonUnreachableError } from '../daemon/control.ts';
import { HookError } from '../daemon/hooks.ts';
import { SourceError } from '../daemon/sources.ts';
import { JobLostError, PlanBusyError } from '../jobs/index.ts';
import { MakeDirectoryError } from '../store/make-directories.ts';
import { StoreError } from '../store/store.ts';
import { PolicyError } from '../engine/retention.ts';
import { FencedError, LockedError } from '../repo/writer-markers.ts';
import { PruneError } from '../engine/prune/prune.ts';
import { SpoolDirectoryError } from '../engine/spool.ts';
import { WorkerFailedError } from '../engine/job-pool.ts';
import { GroupByError } from '../engine/snapshot-filter.ts';
import { CancelledError, EXIT_FATAL, EXIT_INTERRUPTED, EXIT_NO_REPOSITORY, EXIT_WRONG_PASSPHRASE, UsageError } from './exit-codes.ts';

// For code that still takes the exit codes and UsageError from here; new code imports exit-codes.ts.
export * from './exit-codes.ts';

/** Errors the program raises on purpose carry a message written for the user. */
const EXPECTED = [UsageError, CancelledError, RepositoryError, StoreError, FormatError, AuthenticationError, UnsupportedVersionError, BackupError, NoDestinationLeftError, DetachedError, ConfigError, PlanBusyError, JobLostError, MakeDirectoryError, GroupByError, CredentialsError, SourceError, HookError, ControlError, DaemonUnreachableError, PolicyError, FencedError, LockedError, PruneError, SpoolDirectoryError, WorkerFailedError];

/**
 * Whether a failed backup is worth another attempt later: a dropped connection or a full disk may go
 * away; a wrong passphrase, a missing source or refused credentials will not.
 */
export function isRetryable(err: unknown): boolean {
  if (err instanceof FencedError) return true;
  // A database that is down or a hook's service that is not ready may well be back later.
  if (err instanceof SourceError || err instanceof HookError) return true;
  if (err instanceof BackupError && err.cause !== undefined) return isRetryable(err.cause);
  if (err instanceof NoDestinationLeftError) return err.causes.some(isRetryable);
  if (err instanceof DetachedError) return err.cause === undefined || isRetryable(err.cause);
  if (err instanceof StoreError) return err.kind === 'transient' || err.kind === 'no-space';
  return !EXPECTED.some((type) => err instanceof type);
}

/** The exit code of a command that failed with `err`. */
export function exitCodeOf(err: unknown): number {
  if (err instanceof NoRepositoryError) return EXIT_NO_REPOSITORY;
  if (err instanceof WrongPassphraseError) return EXIT_WRONG_PASSPHRASE;
  if (err instanceof CancelledError) return EXIT_INTERRUPTED;
  return EXIT_FATAL;
}

export function describeError(err: unknown): string {
  if (EXPECTED.some((type) => err instanceof type)) return (err as Error).message;
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ENOSPC') return `no space left on device (${e.path ?? e.message}); free some space and run again`;
  if (e?.code === 'EACCES' || e?.code === 'EPERM') return `permission denied: ${e.path ?? e.message}`;
  if (e?.code === 'ENOENT' && e.path) return `no such file or directory: ${e.path}`;
  const message = err instanceof Error ? err.message : String(err);
  return `unexpected error: ${message.split('\n')[0]}`;
}
