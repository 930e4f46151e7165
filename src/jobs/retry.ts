// Retry policy: pure functions, so the delays are tested as a table and the job store only decides
// *whether* to retry. Network errors wait longer: a link that just dropped rarely returns within 30 s.
import { NETWORK_ERROR_CODES } from '../store/network-errors.ts';

export const ErrorClass = {
  network: 'network',
  other: 'other',
} as const;
export type ErrorClass = (typeof ErrorClass)[keyof typeof ErrorClass];

export interface RetryPolicy {
  /** Retries after the first attempt; a job that has used them all stays failed. */
  readonly maxRetries: number;
  /** Delay before retry 1, 2, 3 … per error class; retries past the end of a list reuse its last delay. */
  readonly delaysMs: Readonly<Record<ErrorClass, readonly number[]>>;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxRetries: 3,
  // Explicit lists rather than base × 2ⁿ: the network series 60, 120, 300 s is not a power of two.
  delaysMs: {
    other: [30_000, 60_000, 120_000],
    network: [60_000, 120_000, 300_000],
  },
};

/** How deep to look through `cause` chains: SDKs wrap the socket error a level or two down. */
const MAX_CAUSE_DEPTH = 5;

function isNetworkError(err: unknown, depth: number): boolean {
  if (typeof err !== 'object' || err === null || depth > MAX_CAUSE_DEPTH) return false;
  const { kind, code, cause, errors } = err as { kind?: unknown; code?: unknown; cause?: unknown; errors?: unknown };
  // The store layer's StoreError says 'transient' for network and server hiccups.
  if (kind === 'transient') return true;
  if (typeof code === 'string' && NETWORK_ERROR_CODES.has(code)) return true;
  // Happy-eyeballs connects fail with an AggregateError holding one error per address.
  if (Array.isArray(errors) && errors.some((e) => isNetworkError(e, depth + 1))) return true;
  return isNetworkError(cause, depth + 1);
}

export function classifyError(err: unknown): ErrorClass {
  return isNetworkError(err, 0) ? ErrorClass.network : ErrorClass.other;
}

/** Milliseconds to wait before retry number `attempt` (1 = the first retry). */
export function retryDelay(attempt: number, errorClass: ErrorClass, policy: RetryPolicy = DEFAULT_RETRY_POLICY): number {
  if (!Number.isInteger(attempt) || attempt < 1) throw new RangeError(`retry attempt must be an integer ≥ 1, got ${attempt}`);
  const delays = policy.delaysMs[errorClass];
  if (delays.length === 0) throw new RangeError(`the retry policy has no delays for ${errorClass} errors`);
  return delays[Math.min(attempt, delays.length) - 1]!;
}

export interface RetryPlan {
  /** 1 for the first retry. */
  readonly attempt: number;
  readonly delayMs: number;
}

/** The retry to schedule after a failure, or undefined when `retriesSoFar` has reached the limit. */
export function nextRetry(retriesSoFar: number, errorClass: ErrorClass, policy: RetryPolicy = DEFAULT_RETRY_POLICY): RetryPlan | undefined {
  if (retriesSoFar >= policy.maxRetries) return undefined;
  const attempt = retriesSoFar + 1;
  return { attempt, delayMs: retryDelay(attempt, errorClass, policy) };
}
