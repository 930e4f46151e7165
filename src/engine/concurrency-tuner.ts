// How many uploads a destination runs at once, adapted to the throughput it measures: hill climbing
// on bytes per second. A local disk settles low, a far-away bucket high. Windows in which the
// destination ran out of work say nothing about concurrency and are thrown away.

export interface TunerOptions {
  readonly initial: number;
  readonly min?: number;
  readonly max?: number;
  /** Length of one measurement window. */
  readonly windowMs?: number;
  readonly now?: () => number;
}

/** A change smaller than this is noise. */
const SIGNIFICANT = 0.05;

export class ConcurrencyTuner {
  private level: number;
  private readonly min: number;
  private readonly max: number;
  private readonly windowMs: number;
  private readonly now: () => number;
  private windowStart: number;
  private windowBytes = 0;
  private starved = false;
  private direction = 1;
  private lastThroughput?: number;

  constructor(options: TunerOptions) {
    this.min = options.min ?? 1;
    this.max = options.max ?? 16;
    this.level = Math.min(this.max, Math.max(this.min, options.initial));
    this.windowMs = options.windowMs ?? 2000;
    this.now = options.now ?? Date.now;
    this.windowStart = this.now();
  }

  get current(): number {
    return this.level;
  }

  /** The destination had a free slot and nothing to put in it. */
  noteStarved(): void {
    this.starved = true;
  }

  /** An upload of `bytes` finished. */
  record(bytes: number): void {
    this.windowBytes += bytes;
    const elapsed = this.now() - this.windowStart;
    if (elapsed < this.windowMs) return;
    const throughput = this.windowBytes / elapsed;
    if (!this.starved) this.adapt(throughput);
    this.windowStart = this.now();
    this.windowBytes = 0;
    this.starved = false;
  }

  private adapt(throughput: number): void {
    const last = this.lastThroughput;
    this.lastThroughput = throughput;
    if (last !== undefined && throughput < last * (1 - SIGNIFICANT)) this.direction = -this.direction;
    else if (last !== undefined && throughput <= last * (1 + SIGNIFICANT)) return;
    const next = Math.min(this.max, Math.max(this.min, this.level + this.direction));
    if (next === this.level) this.direction = -this.direction;
    this.level = next;
  }
}
