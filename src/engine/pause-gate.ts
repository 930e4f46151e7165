// A gate a running backup consults between files, stream blocks, packs and uploads: while it is
// closed, work that has started finishes and nothing new starts. Gates nest: a job's gate is closed
// when either the job or everything (its parent, the daemon's global pause) is paused.
//
// Worker threads cannot await a promise in the middle of a synchronous read loop, so the gate also
// keeps its state in shared memory (`shared`: 1 while paused), where a chunk worker waits with
// Atomics.wait after sealing a pack.

export class PauseGate {
  /** 1 while paused, 0 otherwise; shared with worker threads. */
  readonly shared = new Int32Array(new SharedArrayBuffer(4));
  private own = false;
  private readonly parent: PauseGate | undefined;
  private readonly listeners = new Set<(paused: boolean) => void>();
  private readonly detachFromParent: (() => void) | undefined;
  private last: boolean;

  constructor(parent?: PauseGate) {
    this.parent = parent;
    this.detachFromParent = parent?.onChange(() => this.update());
    this.last = this.paused;
    this.publish();
  }

  get paused(): boolean {
    return this.own || (this.parent?.paused ?? false);
  }

  /** Paused by itself, not only through its parent. */
  get pausedHere(): boolean {
    return this.own;
  }

  pause(): void {
    this.own = true;
    this.update();
  }

  resume(): void {
    this.own = false;
    this.update();
  }

  /** Calls `listener` whenever the gate opens or closes; returns the function that stops it. */
  onChange(listener: (paused: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves at once while open; otherwise when the gate opens or `signal` aborts (check it after). */
  wait(signal?: AbortSignal): Promise<void> {
    if (!this.paused || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        stop();
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const stop = this.onChange((paused) => {
        if (!paused) done();
      });
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  /** Opens the gate for workers for good (the run is stopping) and leaves the parent. */
  dispose(): void {
    this.detachFromParent?.();
    this.listeners.clear();
    Atomics.store(this.shared, 0, 0);
    Atomics.notify(this.shared, 0);
  }

  private update(): void {
    const paused = this.paused;
    if (paused === this.last) return;
    this.last = paused;
    this.publish();
    for (const listener of [...this.listeners]) listener(paused);
  }

  private publish(): void {
    Atomics.store(this.shared, 0, this.last ? 1 : 0);
    if (!this.last) Atomics.notify(this.shared, 0);
  }
}
