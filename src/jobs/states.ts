// The job state machine. Every status change in the job store goes through `assertTransition`, so an
// illegal change (say, resuming a completed job) is an error in the code that tried it, not a row that
// quietly ends up in an impossible state.

export const JobStatus = {
  /** Waiting to run: queued, waiting out a retry delay, or an interrupted run queued for resume. */
  pending: 'pending',
  /** Owned by a live process that heartbeats. */
  running: 'running',
  /** Owned by a live process that stopped working on the user's request; it keeps heartbeating. */
  paused: 'paused',
  completed: 'completed',
  /** The last attempt failed; a retry moves it back to pending, a job over its retry limit stays here. */
  failed: 'failed',
  cancelled: 'cancelled',
  /** Its process went away (crash, kill, shutdown, lost heartbeat): the next run of the plan resumes it. */
  interrupted: 'interrupted',
} as const;
export type JobStatus = (typeof JobStatus)[keyof typeof JobStatus];

export const JOB_STATUSES: readonly JobStatus[] = Object.values(JobStatus);

/** Statuses in which a process owns the job. At most one job per plan is in one of them. */
export const LIVE_STATUSES: readonly JobStatus[] = [JobStatus.running, JobStatus.paused];

/** The live statuses as an SQL list, for `status IN (…)`. */
export const LIVE_LIST = LIVE_STATUSES.map((s) => `'${s}'`).join(', ');

/** Which status may follow which. completed and cancelled are final. */
export const TRANSITIONS: Readonly<Record<JobStatus, readonly JobStatus[]>> = {
  // pending → interrupted: the process waiting out a retry delay was stopped; nothing else will run it.
  pending: ['running', 'cancelled', 'interrupted'],
  running: ['paused', 'completed', 'failed', 'cancelled', 'interrupted'],
  // An upload already in flight can still fail while paused; a paused process can die or shut down.
  // A pause that arrives after the last pack finds nothing left to hold: the run commits while paused.
  paused: ['running', 'completed', 'failed', 'cancelled', 'interrupted'],
  // Resumed at once by the next run of its plan, or queued for later.
  interrupted: ['running', 'pending', 'cancelled'],
  // Only a retry (automatic, or requested by the user) brings a failed job back.
  failed: ['pending'],
  completed: [],
  cancelled: [],
};

export class IllegalTransitionError extends Error {
  override name = 'IllegalTransitionError';
  readonly from: JobStatus;
  readonly to: JobStatus;

  constructor(jobId: number, from: JobStatus, to: JobStatus) {
    const allowed = TRANSITIONS[from];
    super(
      `job ${jobId} cannot go from ${from} to ${to} ` +
        `(from ${from} it can only go to ${allowed.length > 0 ? allowed.join(', ') : 'nothing: it is final'})`,
    );
    this.from = from;
    this.to = to;
  }
}

export function canTransition(from: JobStatus, to: JobStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

export function assertTransition(jobId: number, from: JobStatus, to: JobStatus): void {
  if (!canTransition(from, to)) throw new IllegalTransitionError(jobId, from, to);
}

export function isLive(status: JobStatus): boolean {
  return LIVE_STATUSES.includes(status);
}
