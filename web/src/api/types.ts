// The server's JSON as the dashboard reads it (docs/SERVER.md, "API for the dashboard"). Written out
// here rather than imported: the server's modules are Node code, the dashboard runs in a browser.

export interface User {
  readonly id: string;
  readonly email: string;
  readonly role: 'admin' | 'user';
  readonly createdAt: number;
}

export interface Session {
  readonly user: User;
  readonly csrfToken: string;
}

export interface AuthState {
  readonly hasUsers: boolean;
  readonly signup: 'open' | 'invite';
}

export type AgentStatus = 'online' | 'offline';

export interface Agent {
  readonly id: string;
  readonly hostname: string;
  readonly os: string;
  readonly version: string;
  readonly outdated: boolean;
  readonly capacity: number;
  readonly running: number;
  readonly status: AgentStatus;
  readonly lastHeartbeatAt: number;
  readonly registeredAt: number;
  readonly uploadLimit: number | null;
  readonly downloadLimit: number | null;
  readonly labels: string[];
}

export interface Destination {
  readonly id: string;
  readonly name: string;
  readonly kind: 's3' | 'location';
  readonly location: string;
  readonly hasCredentials: boolean;
  readonly uploadLimit: number | null;
  readonly downloadLimit: number | null;
  readonly createdAt: number;
  readonly lastTestAt: number | null;
  readonly lastTestError: string | null;
}

export interface Plan {
  readonly id: string;
  readonly name: string;
  readonly agentId: string;
  readonly paths: string[];
  readonly excludes: string[];
  readonly tags: string[];
  readonly oneFileSystem: boolean;
  readonly destinations: string[];
  readonly schedule: string | null;
  readonly timezone: string | null;
  readonly enabled: boolean;
  readonly revision: number;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly sources?: Source[];
  readonly hooks?: Hooks;
  readonly notify?: Notify;
  readonly retention?: Retention;
  /** Scaled out: N of the owner's online agents, or every agent with the label, back up its shards. */
  readonly workers?: number;
  readonly workerLabel?: string;
  readonly allowPartial?: boolean;
  /** Whether the server holds the plan's repository passphrase (it applies the retention on its S3 destinations); the passphrase itself is never sent back. */
  readonly hasPassphrase: boolean;
}

export type Source =
  | { type: 'postgres'; database: string; host?: string; port?: number; user?: string; format?: 'plain' | 'custom'; filename?: string; passwordFile?: string; passwordCommand?: string }
  | { type: 'mysql'; database: string; host?: string; port?: number; user?: string; socket?: string; filename?: string; passwordFile?: string; passwordCommand?: string }
  | { type: 'sqlite'; path: string; filename?: string }
  | { type: 'command'; command: string; filename: string };

export interface Hook {
  command: string;
  timeout?: string;
}

export interface Hooks {
  before?: Hook;
  after?: Hook;
  onSuccess?: Hook;
  onFailure?: Hook;
}

export interface Notify {
  email?: string[];
  webhooks?: string[];
  on?: ('failure' | 'recovery' | 'overdue' | 'test-write')[];
}

export interface Retention {
  keepLast?: number;
  keepHourly?: number;
  keepDaily?: number;
  keepWeekly?: number;
  keepMonthly?: number;
  keepYearly?: number;
  keepWithin?: string;
  keepWithinHourly?: string;
  keepWithinDaily?: string;
  keepWithinWeekly?: string;
  keepWithinMonthly?: string;
  keepWithinYearly?: string;
  keepTag?: string[];
  groupBy?: string;
}

export type JobStatus = 'pending' | 'running' | 'paused' | 'completed' | 'failed' | 'cancelled' | 'interrupted';

export interface DestinationRef {
  readonly id: string;
  readonly name: string;
  readonly kind: 's3' | 'location';
  readonly location: string;
}

export interface ScaleOut {
  readonly workers: number;
  readonly label?: string;
  readonly allowPartial?: boolean;
}

/** A scaled-out run's shards (GET /api/jobs/:id/shards, job.shards events). Sizes are the split's estimates. */
export interface ShardStatus {
  readonly total: number;
  readonly done: number;
  readonly failed: number;
  readonly filesTotal: number;
  readonly bytesTotal: number;
  readonly filesDone: number;
  readonly bytesDone: number;
  readonly waiting: readonly { readonly index: number; readonly files: number; readonly bytes: number; readonly attempt: number }[];
  readonly running: readonly { readonly index: number; readonly agentId: string; readonly hostname: string; readonly files: number; readonly bytes: number; readonly filesDone: number; readonly bytesDone: number; readonly attempt: number; readonly silentMs: number }[];
}

export interface JobParams {
  readonly scaleOut?: ScaleOut;
  readonly planName?: string;
  readonly paths?: string[];
  readonly destinations?: DestinationRef[];
  readonly snapshot?: string;
  readonly target?: string;
  readonly include?: string[];
}

export interface Job {
  readonly id: string;
  readonly kind: 'backup' | 'restore';
  readonly status: JobStatus;
  readonly planId: string | null;
  readonly agentId: string;
  readonly trigger: string;
  readonly params: JobParams;
  readonly requestedAt: number;
  readonly startedAt: number | null;
  readonly finishedAt: number | null;
  readonly updatedAt: number;
  readonly durationMs: number | null;
  readonly attempt: number;
  readonly maxRetries: number;
  readonly nextAttemptAt: number | null;
  readonly stage: string | null;
  readonly bytesTotal: number;
  readonly bytesDone: number;
  readonly filesTotal: number;
  readonly filesDone: number;
  readonly bytesAdded: number;
  readonly snapshotId: string | null;
  readonly error: string | null;
  /** The plan's retention after the run, as the agent applied it on the destinations it opens itself. */
  readonly retention: RetentionReport | null;
  /** As the server applied it on its own S3 destinations (it holds the plan's passphrase): 'due' until then. */
  readonly serverRetention: 'due' | RetentionReport | null;
}

export interface RetentionReport {
  readonly forgotten: number;
  readonly pruned: boolean;
  readonly freedBytes?: number;
  readonly error?: string;
}

export interface DestinationProgress {
  readonly location: string;
  readonly state: string;
  readonly objectsDone: number;
  readonly objectsQueued: number;
  readonly bytesDone: number;
  readonly bytesQueued: number;
  readonly speed: number;
  readonly etaSeconds?: number;
  readonly concurrency: number;
  readonly error?: string;
}

export interface Progress {
  readonly stage: string;
  readonly elapsedMs: number;
  readonly filesDone: number;
  readonly bytesDone: number;
  readonly filesTotal: number;
  readonly bytesTotal: number;
  readonly totalsKnown?: boolean;
  /** The totals are the parent snapshot's (no counting pass): an estimate until everything is read. */
  readonly totalsEstimated?: boolean;
  readonly bytesPerSecond: number;
  readonly etaSeconds?: number;
  readonly currentFile: string;
  readonly warnings?: number;
  readonly destinations?: readonly DestinationProgress[];
  readonly recentFiles?: readonly string[];
  readonly lastDirectory?: { readonly path: string; readonly durationMs: number; readonly bytes: number; readonly files: number };
  readonly nextDirectory?: { readonly path: string; readonly bytes?: number; readonly files?: number };
}

export interface JobDetail extends Job {
  readonly progress: Progress | null;
  readonly destinations: { destinationId: string; name: string | null; status: string; error: string | null; finishedAt: number | null }[];
}

export interface JobPage {
  readonly jobs: Job[];
  readonly next?: string;
}

export interface LogLine {
  readonly id?: number;
  readonly at: number;
  readonly level: 'info' | 'warn' | 'error';
  readonly message: string;
}

export type AlertKind = 'job-failed' | 'agent-offline' | 'plan-overdue' | 'destination-failing' | 'retention-failed';

export interface Alert {
  readonly id: string;
  readonly kind: AlertKind;
  readonly subjectId: string;
  readonly message: string;
  readonly createdAt: number;
  readonly acknowledgedBy: string | null;
  readonly acknowledgedAt: number | null;
  readonly resolvedAt: number | null;
}

export interface Report {
  readonly period: 'day' | 'week' | 'month';
  readonly from: number;
  readonly to: number;
  readonly jobs: { readonly total: number; readonly byStatus: Record<string, number> };
  readonly successRate: number | null;
  readonly bytesProtected: number;
  readonly bytesAdded: number;
  readonly slowestDestinations: readonly { destinationId: string; name: string | null; bytesPerSecond: number; jobs: number }[];
  readonly failures: readonly { jobId: string; planId: string | null; agentId: string; error: string | null; finishedAt: number | null }[];
}

export interface ApiKey {
  readonly id: string;
  readonly name: string;
  readonly prefix: string;
  readonly createdAt: number;
  readonly lastUsedAt: number | null;
  readonly revokedAt: number | null;
}

export interface Invitation {
  readonly id: string;
  readonly email: string | null;
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly usedAt: number | null;
}
