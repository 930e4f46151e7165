// Retries 'transient' failures (dropped connections, timeouts, throttling, 5xx) with exponential
// backoff and full jitter, so many workers hitting the same hiccup do not retry in lockstep. Every
// other kind means retrying cannot help: denied and no-space need a person, not-found and conflict
// are answers, permanent is a bug or misconfiguration.
import { setTimeout as sleepFor } from 'node:timers/promises';
import { StoreError, type ByteRange, type ObjectHint, type ObjectInfo, type PutOptions, type Store } from './store.ts';

export interface RetryOptions {
  /** Attempts in all (first try included) before the last error is thrown. Default 8. */
  readonly attempts?: number;
  /**
   * Attempts while the store has not answered anything yet. A store that never answered is more
   * likely mistyped (a wrong port, a host that is off) than hiccuping, and the user should hear so in
   * seconds, not after a minute of silence; once it has answered, a failure is a dropped connection
   * worth waiting out. Default: `attempts`.
   */
  readonly firstContactAttempts?: number;
  /** Upper bound of the first delay in ms; it doubles per attempt. Default 500. */
  readonly baseDelay?: number;
  /** No delay exceeds this (ms). Default 60 s. */
  readonly maxDelay?: number;
  /** Told before each wait, e.g. to show "retrying" in progress output. */
  readonly onRetry?: (attempt: number, delay: number, error: StoreError) => void;
  /** Replaceable so tests do not wait; `signal` ends the wait (rejecting). */
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** A number in [0, 1), replaceable so tests get known delays. */
  readonly random?: () => number;
}

const realSleep = (ms: number, signal?: AbortSignal): Promise<void> => sleepFor(ms, undefined, signal ? { signal } : {});

export class RetryStore implements Store {
  readonly location: string;
  private readonly inner: Store;
  private readonly attempts: number;
  private readonly firstContactAttempts: number;
  /** Whether any operation has succeeded yet. */
  private answered = false;
  private readonly baseDelay: number;
  private readonly maxDelay: number;
  /** Settable after construction: the engine learns of retries to show "retrying" for its destination. */
  onRetry: RetryOptions['onRetry'];
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  private readonly random: () => number;

  constructor(inner: Store, options: RetryOptions = {}) {
    this.inner = inner;
    this.location = inner.location;
    this.attempts = options.attempts ?? 8;
    this.firstContactAttempts = options.firstContactAttempts ?? this.attempts;
    this.baseDelay = options.baseDelay ?? 500;
    this.maxDelay = options.maxDelay ?? 60_000;
    this.onRetry = options.onRetry;
    this.sleep = options.sleep ?? realSleep;
    this.random = options.random ?? Math.random;
  }

  /** Delay before attempt `attempt + 1`: uniform in [0, min(maxDelay, baseDelay * 2^(attempt-1))). */
  private delay(attempt: number): number {
    return Math.floor(this.random() * Math.min(this.maxDelay, this.baseDelay * 2 ** (attempt - 1)));
  }

  /** Waits before another attempt, or throws `err` when it must not or may no longer be retried. */
  private async backOff(attempt: number, err: unknown, signal?: AbortSignal): Promise<void> {
    const attempts = this.answered ? this.attempts : this.firstContactAttempts;
    if (!(err instanceof StoreError) || err.kind !== 'transient' || attempt >= attempts || signal?.aborted) throw err;
    const delay = this.delay(attempt);
    this.onRetry?.(attempt, delay, err);
    await this.sleep(delay, signal);
  }

  /** `signal`: a stopped call is not tried again, nor waited for. */
  private async retry<T>(op: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await op();
        this.answered = true;
        return result;
      } catch (err) {
        await this.backOff(attempt, err, signal);
      }
    }
  }

  /** After a retry this may answer false for an object the failed attempt did store before its answer was lost. */
  put(name: string, data: Uint8Array, options?: PutOptions): Promise<boolean> {
    return this.retry(() => this.inner.put(name, data, options), options?.signal);
  }

  get(name: string, range?: ByteRange, hint?: ObjectHint): Promise<Buffer> {
    return this.retry(() => this.inner.get(name, range, hint));
  }

  stat(name: string): Promise<ObjectInfo | undefined> {
    return this.retry(() => this.inner.stat(name));
  }

  /** A listing that fails part-way starts again and skips what it already yielded (as restic does). */
  async *list(dir: string): AsyncIterable<ObjectInfo> {
    const seen = new Set<string>();
    for (let attempt = 1; ; attempt++) {
      try {
        for await (const info of this.inner.list(dir)) {
          if (seen.has(info.name)) continue;
          seen.add(info.name);
          this.answered = true;
          yield info;
        }
        this.answered = true;
        return;
      } catch (err) {
        await this.backOff(attempt, err);
      }
    }
  }

  delete(name: string): Promise<void> {
    return this.retry(() => this.inner.delete(name));
  }

  async removeIncomplete(before: number): Promise<number> {
    return this.retry(async () => (await this.inner.removeIncomplete?.(before)) ?? 0);
  }

  /** Local work only: no retries. */
  async pruneCopies(isIndexed: (packName: string) => boolean): Promise<void> {
    await this.inner.pruneCopies?.(isIndexed);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
