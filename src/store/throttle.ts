// Bandwidth limits (--limit-upload / --limit-download). Objects move whole through the Store
// interface, so the limit is kept on average: every transfer pays for its bytes from a token bucket
// shared by all concurrent calls through one ThrottleStore, and waits while the bucket is in debt.
// A stop signal ends those waits: at a low limit one object's share can be half a minute, and a paused
// or cancelled job must not sit that out (the object was not sent yet, so nothing is half-written).
import { setTimeout as delay } from 'node:timers/promises';
import { eitherSignal, type ByteRange, type ObjectHint, type ObjectInfo, type PutOptions, type Store } from './store.ts';

export interface Clock {
  now(): number;
  /** Rejects when `signal` aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const realClock: Clock = {
  now: () => performance.now(),
  sleep: (ms, signal) => delay(ms, undefined, signal ? { signal } : {}),
};

export class TokenBucket {
  private readonly clock: Clock;
  private readonly burst: number | undefined;
  /** Bytes per second; Infinity: no limit. */
  private rate = Infinity;
  private capacity = Infinity;
  private tokens = Infinity;
  private updated: number;
  /** Tokens added since the bucket was made: a waiter's debt is paid once this reaches its mark. */
  private refilled = 0;
  /** Aborted when the rate changes, so waiters work their wait out again at the new rate. */
  private changed = new AbortController();

  /**
   * `rate` in bytes per second, undefined for none; up to `burst` bytes (default: one second's worth)
   * may go at full speed after a pause.
   */
  constructor(rate: number | undefined, options: { burst?: number; clock?: Clock } = {}) {
    this.clock = options.clock ?? realClock;
    this.burst = options.burst;
    this.updated = this.clock.now();
    this.setRate(rate);
  }

  /**
   * Changes the limit (undefined: none) for every transfer through this bucket, the ones waiting
   * included: an agent's limit changed on the server applies to its running jobs at once.
   */
  setRate(rate: number | undefined): void {
    if (rate !== undefined && !(rate > 0)) throw new RangeError(`a rate limit must be above 0 bytes/s, not ${rate}`);
    this.refill();
    const limited = this.rate !== Infinity;
    this.rate = rate ?? Infinity;
    this.capacity = rate === undefined ? Infinity : (this.burst ?? rate);
    // From no limit to one: a full bucket, as for a new one. Between limits: the debt stays owed.
    this.tokens = limited ? Math.min(this.capacity, this.tokens) : this.capacity;
    this.changed.abort();
    this.changed = new AbortController();
  }

  private refill(): void {
    const now = this.clock.now();
    if (this.rate !== Infinity) {
      const added = ((now - this.updated) / 1000) * this.rate;
      this.refilled += added;
      this.tokens = Math.min(this.capacity, this.tokens + added);
    }
    this.updated = now;
  }

  /**
   * Takes `bytes` tokens, going into debt if there are not enough, and resolves once the debt (this
   * call's and that of the calls before it) is paid back, so concurrent callers queue up fairly. A call
   * stopped by `signal` while it waits gives its tokens back (its bytes will not be sent) and rejects.
   */
  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    if (this.rate === Infinity) return;
    this.refill();
    this.tokens -= bytes;
    if (this.tokens >= 0) return;
    const paidAt = this.refilled - this.tokens;
    try {
      for (;;) {
        const changed = this.changed.signal;
        try {
          await this.clock.sleep(((paidAt - this.refilled) / this.rate) * 1000, signal ? AbortSignal.any([signal, changed]) : changed);
        } catch (err) {
          if (!changed.aborted || signal?.aborted) throw err;
        }
        // Lifted: whatever was owed is forgiven. Changed: the rest of the debt at the new rate.
        if (this.rate === Infinity) return;
        this.refill();
        if (this.refilled >= paidAt - 1e-6) return;
      }
    } catch (err) {
      this.tokens = Math.min(this.capacity, this.tokens + bytes);
      throw err;
    }
  }
}

export interface ThrottleOptions {
  /** Upload limit in bytes per second; no limit when absent. */
  readonly upload?: number;
  /** Download limit in bytes per second; no limit when absent. */
  readonly download?: number;
  /** Buckets shared with other stores (an agent's limit over all its destinations); used instead of the rates above. */
  readonly uploadBucket?: TokenBucket;
  readonly downloadBucket?: TokenBucket;
  readonly clock?: Clock;
  /** Ends the waits of this store's calls (a job paused or cancelled); those calls then reject. */
  readonly signal?: AbortSignal;
}

export class ThrottleStore implements Store {
  readonly location: string;
  private readonly inner: Store;
  private readonly upload: TokenBucket | undefined;
  private readonly download: TokenBucket | undefined;
  private readonly signal: AbortSignal | undefined;

  constructor(inner: Store, options: ThrottleOptions) {
    this.inner = inner;
    this.location = inner.location;
    this.signal = options.signal;
    const clock = options.clock;
    this.upload = options.uploadBucket ?? (options.upload === undefined ? undefined : new TokenBucket(options.upload, { clock }));
    this.download = options.downloadBucket ?? (options.download === undefined ? undefined : new TokenBucket(options.download, { clock }));
  }

  /** Pays before sending, so the data leaves no faster than the limit. */
  async put(name: string, data: Uint8Array, options?: PutOptions): Promise<boolean> {
    await this.upload?.take(data.length, eitherSignal(this.signal, options?.signal));
    return this.inner.put(name, data, options);
  }

  /** Pays after receiving, when the size of a whole object is known; the caller waits for the debt. */
  async get(name: string, range?: ByteRange, hint?: ObjectHint): Promise<Buffer> {
    const data = await this.inner.get(name, range, hint);
    await this.download?.take(data.length, this.signal);
    return data;
  }

  stat(name: string): Promise<ObjectInfo | undefined> {
    return this.inner.stat(name);
  }

  list(dir: string): AsyncIterable<ObjectInfo> {
    return this.inner.list(dir);
  }

  delete(name: string): Promise<void> {
    return this.inner.delete(name);
  }

  async removeIncomplete(before: number): Promise<number> {
    return (await this.inner.removeIncomplete?.(before)) ?? 0;
  }

  async pruneCopies(isIndexed: (packName: string) => boolean): Promise<void> {
    await this.inner.pruneCopies?.(isIndexed);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

const UNITS: Record<string, number> = { '': 1024, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/**
 * Parses a rate limit given on the command line into bytes per second: a bare number is KiB/s (as in
 * restic and rsync); suffixes K, M, G are powers of 1024, B is bytes ('5M', '512', '1.5MiB/s', '800KB').
 */
export function parseRate(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(?:([kmg])(?:i?b)?|(b))?\s*(?:\/s)?\s*$/i.exec(text);
  if (!match) throw new RangeError(`invalid rate '${text}': use a number of KiB/s or a number with K, M or G (e.g. 500, 5M, 1.5G)`);
  const unit = (match[2] ?? match[3] ?? '').toLowerCase();
  const bytes = Math.round(Number(match[1]) * UNITS[unit]!);
  if (bytes <= 0) throw new RangeError(`invalid rate '${text}': it must be above zero`);
  return bytes;
}
