// Is the process that owns a live job still there? Two independent signs of death, either one enough:
// its pid is gone (only checkable on its own host), or its heartbeat is older than the threshold (hung,
// suspended, or on another host we cannot see). A pid reused by an unrelated process passes the first
// check but not the second, so a wrongly "alive" job is still caught once its heartbeat goes stale.
import type { Job } from './types.ts';
import { processAlive } from '../repo/process.ts';

export { processAlive };

/** Heartbeat at this interval; a run that misses many in a row is stale. */
export const HEARTBEAT_INTERVAL_MS = 15_000;
/** Generous: a crash on this host is caught at once by the pid check, so this only has to catch hangs. */
export const DEFAULT_STALE_AFTER_MS = 5 * 60_000;

export interface LivenessCheck {
  readonly now: number;
  /** This host's name: pids are only meaningful on the host that recorded them. */
  readonly host: string;
  readonly staleAfterMs: number;
  readonly isAlive: (pid: number) => boolean;
}

/** Why a live job's owner should be considered dead, or undefined if it looks alive. */
export function staleReason(job: Pick<Job, 'pid' | 'host' | 'lastHeartbeat' | 'startedAt'> & { readonly staleAfterMs?: number | null }, check: LivenessCheck): string | undefined {
  if (job.host === check.host && job.pid !== null && !check.isAlive(job.pid)) {
    return `process ${job.pid} is gone`;
  }
  const lastSign = job.lastHeartbeat ?? job.startedAt;
  if (lastSign === null) return 'it never sent a heartbeat';
  const silentMs = check.now - lastSign;
  // The run's own limit (its plan's staleAfter) when it declared one, else the checker's.
  const limit = job.staleAfterMs ?? check.staleAfterMs;
  if (silentMs > limit) {
    return `no heartbeat for ${seconds(silentMs)} s (limit ${seconds(limit)} s)`;
  }
  return undefined;
}

export function seconds(ms: number): number {
  return Math.round(ms / 1000);
}
