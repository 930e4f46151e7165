// What an agent and the server say to each other, over a WebSocket (one JSON message per frame) or the
// long-poll fallback (the same messages in JSON arrays). Both sides import these types; neither knows
// the other's internals.
import type { HooksConfig, SourceConfig } from '../config/automation.ts';
import type { RetentionReport } from '../daemon/plan-retention.ts';
import type { PlanRetention } from '../engine/forget.ts';
import type { BackupProgress } from '../engine/backup/progress.ts';
import type { RestoreProgress } from '../engine/restore/restore.ts';

/** Bumped when a message changes incompatibly; the server refuses an agent speaking another version. */
export const PROTOCOL_VERSION = 1;

export interface AgentHello {
  readonly protocol: number;
  readonly hostname: string;
  readonly os: string;
  readonly version: string;
  /** Backups the agent runs at once. */
  readonly capacity: number;
  /** The id the server gave this agent before; absent on first registration. */
  readonly agentId?: string;
  /** The agent's --label flags; absent: the labels set on the server stay. */
  readonly labels?: readonly string[];
}

export interface Welcome extends AgentLimits {
  readonly agentId: string;
  readonly serverVersion: string;
  readonly heartbeatSeconds: number;
}

export interface Limits {
  /** Bytes per second for all uploads of the agent together; absent: none. */
  readonly upload?: number;
  readonly download?: number;
}

/**
 * All the bandwidth limits an agent follows, sent whole in the welcome, when its socket (re)connects and
 * whenever one of them changes: they apply at once to its running jobs.
 */
export interface AgentLimits {
  /** The agent's own, over all its transfers. */
  readonly limits: Limits;
  /** Each of its user's destinations', by destination id, over all the agent's transfers to that destination. */
  readonly destinations?: Readonly<Record<string, Limits>>;
}

export interface DestinationRef {
  readonly id: string;
  readonly name: string;
  /** 's3': through pre-signed URLs from the server (the agent holds no storage credentials); 'location': opened by the agent. */
  readonly kind: 's3' | 'location';
  /** For 'location', what the agent opens (a path, sftp://…); for 's3', for display only. */
  readonly location: string;
  /** As of the job's creation: the agent follows newer ones from its AgentLimits. */
  readonly limits: Limits;
}

export interface BackupParams {
  readonly planId: string;
  readonly planName: string;
  readonly paths: readonly string[];
  readonly excludes: readonly string[];
  readonly tags: readonly string[];
  readonly oneFileSystem: boolean;
  readonly destinations: readonly DestinationRef[];
  /** Database dumps and command output streamed into the snapshot (the daemon's `sources`). */
  readonly sources?: readonly SourceConfig[];
  /** Commands run around the backup (the daemon's `hooks`). */
  readonly hooks?: HooksConfig;
  /** The plan's retention, applied by the agent after a successful run to the plan's own snapshots. */
  readonly retention?: PlanRetention;
  /** This run, if it completes, is the pruneEvery-th: prune after the retention. */
  readonly prune?: boolean;
  /** A scaled-out run: this agent coordinates (splits, merges), the plan's workers back up the shards. */
  readonly scaleOut?: ScaleOutParams;
  /**
   * The server holds the plan's passphrase: after the run it applies the retention itself on the plan's
   * `s3` destinations (write-only for agents); the agent applies it on the destinations it opens itself.
   */
  readonly retentionByServer?: boolean;
}

export interface ScaleOutParams {
  /** How many workers the split is made for. */
  readonly workers: number;
  /** The workers are the owner's agents with this label; absent: `workers` of the owner's online agents. */
  readonly label?: string;
  /** A shard that failed for good leaves a snapshot marked partial instead of none. */
  readonly allowPartial?: boolean;
}

/** Where a fleet run's shards stand, as its coordinator and the dashboard see it. */
export interface FleetShardStatus {
  readonly total: number;
  readonly done: number;
  readonly failed: number;
  /** The whole run by the split's estimates, and how much of it is read (done and running shards). */
  readonly filesTotal: number;
  readonly bytesTotal: number;
  readonly filesDone: number;
  readonly bytesDone: number;
  /** Shards waiting for a worker, with the split's estimates of their size. */
  readonly waiting: readonly { readonly index: number; readonly files: number; readonly bytes: number; readonly attempt: number }[];
  readonly running: readonly {
    readonly index: number;
    readonly agentId: string;
    readonly hostname: string;
    readonly files: number;
    readonly bytes: number;
    readonly filesDone: number;
    readonly bytesDone: number;
    readonly attempt: number;
    readonly silentMs: number;
  }[];
}

export interface RestoreParams {
  readonly destinations: readonly DestinationRef[];
  /** A snapshot id, a unique prefix of one, or 'latest'. */
  readonly snapshot: string;
  readonly target: string;
  readonly include: readonly string[];
}

export type JobAssignment =
  | { readonly id: string; readonly kind: 'backup'; readonly attempt: number; readonly params: BackupParams }
  | { readonly id: string; readonly kind: 'restore'; readonly attempt: number; readonly params: RestoreParams };

export interface PlanSummary {
  readonly id: string;
  readonly name: string;
  readonly revision: number;
  readonly paths: readonly string[];
  readonly schedule: string | null;
}

/**
 * A question about a repository, for the dashboard: only an agent holds the passphrase, so the server
 * asks one. `tar` streams its answer to `upload` (a server path) and answers once it is done.
 */
export type RepoQuery =
  | { readonly op: 'snapshots' }
  | { readonly op: 'tree'; readonly snapshot: string; readonly path: string; readonly after?: string; readonly limit: number; readonly filter?: string }
  | { readonly op: 'diff'; readonly snapshot: string; readonly to: string; readonly limit: number }
  | { readonly op: 'tar'; readonly snapshot: string; readonly paths: readonly string[]; readonly upload: string }
  | { readonly op: 'test-write' };

export type ToAgent =
  | { readonly type: 'job'; readonly job: JobAssignment }
  | { readonly type: 'control'; readonly jobId: string; readonly action: 'pause' | 'resume' | 'cancel' }
  | ({ readonly type: 'limits' } & AgentLimits)
  | { readonly type: 'plans'; readonly plans: readonly PlanSummary[] }
  /** The agent's key was revoked or the agent deleted: it must stop. */
  | { readonly type: 'revoked'; readonly reason: string }
  | { readonly type: 'query'; readonly id: string; readonly destinations: readonly DestinationRef[]; readonly query: RepoQuery }
  /** Shards of a scaled-out run wait for this agent: claim them (POST /api/agent/shards/claim) until the run is over. */
  | { readonly type: 'shards'; readonly run: string; readonly destinations: readonly DestinationRef[] };

/** A restore's progress, in the same frame as a backup's. */
export interface RestoreJobProgress extends Omit<RestoreProgress, 'etaSeconds'> {
  readonly stage: 'restoring';
  readonly etaSeconds?: number;
}

/** Progress as the dashboard shows it. */
export type JobProgress = BackupProgress | RestoreJobProgress;

export interface LogLine {
  readonly at: number;
  readonly level: 'info' | 'warn' | 'error';
  readonly message: string;
}

export interface DestinationResult {
  readonly destinationId: string;
  readonly committed: boolean;
  readonly error?: string;
}

export type JobOutcome =
  | { readonly outcome: 'completed'; readonly snapshotId?: string; readonly bytesAdded: number; readonly filesDone: number; readonly bytesDone: number; readonly destinations: readonly DestinationResult[]; readonly warnings: number; readonly retention?: RetentionReport }
  | { readonly outcome: 'failed'; readonly error: string; readonly retryable: boolean; readonly network: boolean; readonly destinations?: readonly DestinationResult[] }
  | { readonly outcome: 'cancelled' }
  | { readonly outcome: 'interrupted'; readonly reason: string };

export type FromAgent =
  | { readonly type: 'heartbeat'; readonly running: readonly string[] }
  | { readonly type: 'progress'; readonly jobId: string; readonly progress: JobProgress }
  | { readonly type: 'log'; readonly jobId: string; readonly lines: readonly LogLine[] }
  | { readonly type: 'paused'; readonly jobId: string }
  | { readonly type: 'resumed'; readonly jobId: string }
  | ({ readonly type: 'finished'; readonly jobId: string } & JobOutcome)
  /** The answer to a `query`: its result, or why there is none. */
  | { readonly type: 'answer'; readonly id: string; readonly result?: unknown; readonly error?: string };
