// The job layer's public API, for the CLI, the daemon and the server. See docs/JOBS.md.
export { resolveDataDir } from './data-dir.ts';
export { JobStore, type JobStoreOptions } from './job-store.ts';
export { JobLostError, PlanBusyError } from './job-errors.ts';
export { JobRun, type FailResult } from './run.ts';
export { statusReport, type DestinationReport, type LiveJob, type ProblemJob, type QueuedJob, type StatusReport } from './status.ts';
export { JobStatus, TRANSITIONS, IllegalTransitionError, canTransition, assertTransition } from './states.ts';
export { DEFAULT_RETRY_POLICY, ErrorClass, classifyError, retryDelay, nextRetry, type RetryPolicy } from './retry.ts';
export { DEFAULT_STALE_AFTER_MS, HEARTBEAT_INTERVAL_MS } from './liveness.ts';
export { RunLog, LogLevel, readJobLog, rotateRunLogs, runLogDir, DEFAULT_RUN_LOG_LIMITS, type LogEntry, type RunLogLimits } from './run-log.ts';
export { redact, redactString } from './redact.ts';
export { DestinationStatus, EventKind } from './types.ts';
export type { Destination, Job, JobDestination, JobEvent, JobRunRecord, Plan, Progress } from './types.ts';
