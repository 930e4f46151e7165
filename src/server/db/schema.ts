// The server database's tables as Kysely sees them. Times are epoch milliseconds, flags 0/1, structured
// values JSON text: the same on SQLite and PostgreSQL. Ids are random UUIDs, so an id tells nothing
// about another user's resources and cannot be guessed by counting.
import type { Generated, Insertable, Selectable, Updateable } from 'kysely';

export interface UsersTable {
  id: string;
  email: string;
  password_hash: string;
  role: 'admin' | 'user';
  created_at: number;
  password_changed_at: number;
}

export interface SessionsTable {
  /** SHA-256 of the cookie's token: a stolen database holds no usable session. */
  id: string;
  user_id: string;
  csrf_token: string;
  created_at: number;
  expires_at: number;
  last_seen_at: number;
}

export interface InvitationsTable {
  id: string;
  token_hash: string;
  email: string | null;
  created_by: string;
  created_at: number;
  expires_at: number;
  used_at: number | null;
  used_by: string | null;
}

export interface SettingsTable {
  key: string;
  value: string;
}

export interface LoginThrottleTable {
  /** 'email:…' or 'ip:…' */
  key: string;
  failures: number;
  window_started_at: number;
  locked_until: number;
}

export interface ApiKeysTable {
  id: string;
  user_id: string;
  name: string;
  /** The first characters of the key, shown in lists so a person can tell keys apart. */
  prefix: string;
  key_hash: string;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

export interface AgentsTable {
  id: string;
  user_id: string;
  api_key_id: string;
  hostname: string;
  os: string;
  version: string;
  capacity: number;
  status: 'online' | 'offline';
  last_heartbeat_at: number;
  registered_at: number;
  /** Bytes per second for all of the agent's uploads together; null: no limit. */
  upload_limit: number | null;
  download_limit: number | null;
  /** JSON array of the agent's labels, sorted (agent/labels.ts). */
  labels: string;
}

export interface DestinationsTable {
  id: string;
  user_id: string;
  name: string;
  /** 's3': the server holds the credentials and hands out pre-signed URLs; 'location': the agent opens it itself. */
  kind: 's3' | 'location';
  location: string;
  /** s3 only: the credentials, encrypted with the server's secret. */
  credentials: string | null;
  upload_limit: number | null;
  download_limit: number | null;
  created_at: number;
  last_test_at: number | null;
  last_test_error: string | null;
}

export interface PlansTable {
  id: string;
  user_id: string;
  agent_id: string;
  name: string;
  /** JSON PlanSpec */
  spec: string;
  schedule: string | null;
  timezone: string | null;
  enabled: number;
  revision: number;
  created_at: number;
  updated_at: number;
  /** The repository's passphrase, sealed with the server's key: given by the owner so the server applies the plan's retention on its S3 destinations. Never leaves the server. */
  passphrase: string | null;
}

export interface JobsTable {
  id: string;
  user_id: string;
  plan_id: string | null;
  agent_id: string;
  kind: 'backup' | 'restore';
  status: 'pending' | 'running' | 'paused' | 'completed' | 'failed' | 'cancelled' | 'interrupted';
  trigger: string;
  /** JSON: what the agent runs (the plan as it was when requested, or a restore's snapshot, paths, target). */
  params: string;
  requested_at: number;
  started_at: number | null;
  finished_at: number | null;
  updated_at: number;
  attempt: number;
  max_retries: number;
  next_attempt_at: number | null;
  stage: string | null;
  bytes_total: number;
  bytes_done: number;
  files_total: number;
  files_done: number;
  bytes_added: number;
  snapshot_id: string | null;
  error: string | null;
  /** JSON: the newest progress report (per destination, current and recent files, directories). */
  progress: string | null;
  /** JSON RetentionReport: the plan's retention as the agent applied it after this run (on the destinations it opens itself). */
  retention: string | null;
  /** The plan's retention on the server's own S3 destinations: 'due' until the server has applied it, then a JSON RetentionReport. */
  server_retention: string | null;
}

export interface JobDestinationsTable {
  job_id: string;
  destination_id: string;
  status: 'pending' | 'running' | 'completed' | 'failed';
  bytes_done: number;
  speed: number;
  error: string | null;
  finished_at: number | null;
}

export interface JobLogsTable {
  id: Generated<number>;
  job_id: string;
  at: number;
  level: string;
  message: string;
}

export interface AlertsTable {
  id: string;
  user_id: string;
  kind: 'job-failed' | 'agent-offline' | 'plan-overdue' | 'destination-failing' | 'retention-failed';
  subject_id: string;
  message: string;
  created_at: number;
  acknowledged_by: string | null;
  acknowledged_at: number | null;
  resolved_at: number | null;
}

export interface EventsTable {
  id: Generated<number>;
  /** Whose dashboard sees it; null for events only servers read. */
  user_id: string | null;
  /** The agent an 'agent.*' command is for. */
  agent_id: string | null;
  type: string;
  data: string;
  at: number;
}

/** A scaled-out fleet run on PostgreSQL (server/scale-out/pg-fleet-shards.ts); its shards are pg-boss jobs. */
export interface FleetRunsTable {
  id: string;
  job_id: string;
  user_id: string;
  /** The coordinating agent (the plan's). */
  coordinator: string;
  /** JSON [agent id, host name][]: the agents that may claim. */
  workers: string;
  /** JSON DestinationRef[]: told to the workers with the run. */
  destinations: string;
  /** JSON { files, bytes }[]: each shard's estimate, in shard order. */
  sizes: string;
  /** JSON ShardOutcome[], once no shard is left to run. */
  outcomes: string | null;
  created_at: number;
  /** When the run's job stopped running: its shards are gone. */
  ended_at: number | null;
}

/** Which agent holds a shard's attempt (claim: the pg-boss job id / retry count), with its progress. */
export interface FleetClaimsTable {
  claim: string;
  run_id: string;
  agent_id: string;
  files_done: number;
  bytes_done: number;
}

export interface Database {
  users: UsersTable;
  sessions: SessionsTable;
  invitations: InvitationsTable;
  settings: SettingsTable;
  login_throttle: LoginThrottleTable;
  api_keys: ApiKeysTable;
  agents: AgentsTable;
  destinations: DestinationsTable;
  plans: PlansTable;
  jobs: JobsTable;
  job_destinations: JobDestinationsTable;
  job_logs: JobLogsTable;
  alerts: AlertsTable;
  events: EventsTable;
  fleet_runs: FleetRunsTable;
  fleet_claims: FleetClaimsTable;
}

export type User = Selectable<UsersTable>;
export type Agent = Selectable<AgentsTable>;
export type Destination = Selectable<DestinationsTable>;
export type Plan = Selectable<PlansTable>;
export type Job = Selectable<JobsTable>;
export type NewJob = Insertable<JobsTable>;
export type JobUpdate = Updateable<JobsTable>;
export type Alert = Selectable<AlertsTable>;
export type FleetRun = Selectable<FleetRunsTable>;
