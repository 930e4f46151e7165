// Answers of the dashboard's own routes (src/server/dashboard, src/server/snapshots).

export interface PlanDestinationStatus {
  readonly destinationId: string;
  readonly name: string;
  readonly lastSuccessAt: number | null;
  readonly lastSnapshotId: string | null;
  /** The outcome of the newest finished run on this destination. */
  readonly lastStatus: 'completed' | 'failed' | null;
  readonly lastError: string | null;
}

export interface OverviewPlan {
  readonly id: string;
  readonly name: string;
  readonly agentId: string;
  readonly enabled: boolean;
  readonly schedule: string | null;
  readonly lastSuccessAt: number | null;
  readonly destinations: readonly PlanDestinationStatus[];
}

export interface OverviewMachine {
  readonly id: string;
  readonly hostname: string;
  readonly status: 'online' | 'offline';
  readonly plans: number;
  readonly lastSuccessAt: number | null;
  /** protected: every plan has a success and nothing is open against it; at-risk: something is; unprotected: no plan or no success yet. */
  readonly state: 'protected' | 'at-risk' | 'unprotected';
  readonly reason: string | null;
}

export interface DailyPoint {
  /** Local day, YYYY-MM-DD. */
  readonly day: string;
  readonly bytesAdded: number;
  readonly completed: number;
  readonly failed: number;
  readonly cancelled: number;
  readonly interrupted: number;
}

export interface Overview {
  readonly machines: readonly OverviewMachine[];
  readonly plans: readonly OverviewPlan[];
  readonly bytesProtected: number;
  readonly filesProtected: number;
  readonly openAlerts: number;
  readonly unacknowledgedAlerts: number;
  readonly activeJobs: number;
  readonly daily: readonly DailyPoint[];
}

export interface PauseState {
  readonly paused: boolean;
  readonly pausedAt: number | null;
}

export interface SmtpView {
  readonly host: string;
  readonly port: number | null;
  readonly secure: boolean;
  readonly user: string | null;
  readonly from: string;
  readonly hasPassword: boolean;
}

export interface SettingsView {
  readonly signup: 'open' | 'invite';
  readonly smtp: SmtpView | null;
}

/** How often a person's report is emailed to them (null: never). */
export interface ReportEmail {
  readonly period: 'day' | 'week' | 'month' | null;
  readonly to: string;
  /** Whether the server has an SMTP server to send with. */
  readonly smtp: boolean;
}

export interface SnapshotInfo {
  readonly id: string;
  readonly time: string;
  readonly host: string;
  readonly paths: readonly string[];
  readonly tags: readonly string[];
  readonly totalFiles: number;
  readonly totalBytes: number;
  readonly bytesAdded: number;
  readonly planId: string | null;
  readonly planName: string | null;
  readonly jobId: string | null;
}

export interface SnapshotList {
  readonly agentId: string;
  readonly destinationId: string;
  readonly snapshots: readonly SnapshotInfo[];
}

export type EntryType = 'dir' | 'file' | 'symlink' | 'other';

export interface TreeEntry {
  readonly name: string;
  readonly type: EntryType;
  readonly size: number;
  readonly mtime: number;
  readonly mode: number;
  readonly target?: string;
}

export interface TreePage {
  readonly path: string;
  readonly entries: readonly TreeEntry[];
  /** The name to continue after, when the directory has more entries. */
  readonly next?: string;
  /** Entries in the whole folder. */
  readonly total: number;
  /** Where this page starts among the entries listed (those matching the filter, with one). */
  readonly offset: number;
  /** With a filter: how many names hold it. */
  readonly matches?: number;
}

export type ChangeKind = '+' | '-' | 'M' | 'T' | 'U';

export interface DiffAnswer {
  readonly changes: readonly { kind: ChangeKind; path: string; type: EntryType; size: number }[];
  readonly counts: Record<ChangeKind, number>;
  readonly truncated: boolean;
}
