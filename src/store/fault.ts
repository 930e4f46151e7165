// A store that misbehaves on purpose, for tests of retries, fan-out and resume: added latency, a
// slow link, random failures from a seeded generator (so a failing run can be replayed), a switch
// that takes it offline, and a limit after which every put fails (a crash or a full disk).
import { StoreError, type ByteRange, type ObjectHint, type ObjectInfo, type PutOptions, type Store, type StoreErrorKind } from './store.ts';
import { TokenBucket, realClock, type Clock } from './throttle.ts';

export interface FaultOptions {
  /** Milliseconds added before every call. */
  readonly latency?: number;
  /** Bytes per second each way; a transfer takes size / bandwidth. */
  readonly bandwidth?: number;
  /** Chance in [0, 1] that a call fails before reaching the store. */
  readonly errorRate?: number;
  /** Seed of the generator behind errorRate. Default 1. */
  readonly seed?: number;
  /** Every put after this many successful ones fails. */
  readonly failAfterPuts?: number;
  /** Kind of the errors from errorRate and failAfterPuts. Default 'transient'. */
  readonly failKind?: StoreErrorKind;
  readonly clock?: Clock;
}

/** mulberry32: tiny, fast, and good enough to decide which calls fail (and, in tests, to fuzz repeatably). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

export class FaultStore implements Store {
  readonly location: string;
  private readonly inner: Store;
  private readonly options: FaultOptions;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly uplink: TokenBucket | undefined;
  private readonly downlink: TokenBucket | undefined;
  private offline = false;
  private putsDone = 0;

  constructor(inner: Store, options: FaultOptions = {}) {
    this.inner = inner;
    this.location = inner.location;
    this.options = options;
    this.clock = options.clock ?? realClock;
    this.random = seededRandom(options.seed ?? 1);
    const { bandwidth } = options;
    const link = (): TokenBucket | undefined => (bandwidth === undefined ? undefined : new TokenBucket(bandwidth, { burst: 0, clock: this.clock }));
    this.uplink = link();
    this.downlink = link();
  }

  /** Every call fails with a 'transient' error until goOnline(), including calls already under way. */
  goOffline(): void {
    this.offline = true;
  }

  goOnline(): void {
    this.offline = false;
  }

  private checkOnline(action: string): void {
    if (this.offline) throw new StoreError('transient', `${action}: connection reset (injected: offline)`);
  }

  /** Latency, the offline switch and the error rate, before a call reaches the store. */
  private async enter(action: string): Promise<void> {
    if (this.options.latency) await this.clock.sleep(this.options.latency);
    this.checkOnline(action);
    if (this.options.errorRate && this.random() < this.options.errorRate) {
      throw new StoreError(this.options.failKind ?? 'transient', `${action}: injected failure`);
    }
  }

  /** Runs `op` between the checks: going offline while it runs loses its answer, as a dropped connection does. */
  private async call<T>(action: string, op: () => Promise<T>): Promise<T> {
    await this.enter(action);
    const result = await op();
    this.checkOnline(action);
    return result;
  }

  put(name: string, data: Uint8Array, options?: PutOptions): Promise<boolean> {
    const action = `writing ${name} to ${this.location}`;
    return this.call(action, async () => {
      if (this.options.failAfterPuts !== undefined && this.putsDone >= this.options.failAfterPuts) {
        throw new StoreError(this.options.failKind ?? 'transient', `${action}: injected failure after ${this.putsDone} puts`);
      }
      // A stopped write ends its slow transfer at once, as a real store's aborted request does.
      await this.uplink?.take(data.length, options?.signal);
      const stored = await this.inner.put(name, data, options);
      this.putsDone++;
      return stored;
    });
  }

  get(name: string, range?: ByteRange, hint?: ObjectHint): Promise<Buffer> {
    return this.call(`reading ${name} from ${this.location}`, async () => {
      const data = await this.inner.get(name, range, hint);
      await this.downlink?.take(data.length);
      return data;
    });
  }

  stat(name: string): Promise<ObjectInfo | undefined> {
    return this.call(`checking ${name} in ${this.location}`, () => this.inner.stat(name));
  }

  async *list(dir: string): AsyncIterable<ObjectInfo> {
    const action = `listing ${dir} in ${this.location}`;
    await this.enter(action);
    for await (const info of this.inner.list(dir)) {
      this.checkOnline(action);
      yield info;
    }
  }

  delete(name: string): Promise<void> {
    return this.call(`deleting ${name} from ${this.location}`, () => this.inner.delete(name));
  }

  removeIncomplete(before: number): Promise<number> {
    return this.call(`removing incomplete uploads from ${this.location}`, async () => (await this.inner.removeIncomplete?.(before)) ?? 0);
  }

  async pruneCopies(isIndexed: (packName: string) => boolean): Promise<void> {
    await this.inner.pruneCopies?.(isIndexed);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
