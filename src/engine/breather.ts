// Work that never waits for anything real (walking trees that are already in memory, restoring a
// directory of symlinks) would keep the event loop busy for minutes: Ctrl-C, SIGTERM, progress output
// and timers all wait for it. A Breather lets the event loop run every few milliseconds.
import { setImmediate as nextTurn } from 'node:timers/promises';

const INTERVAL_MS = 10;

export class Breather {
  private last = performance.now();

  /** Resolves at once most of the time; every INTERVAL_MS it waits for one turn of the event loop. */
  async pause(): Promise<void> {
    const now = performance.now();
    if (now - this.last < INTERVAL_MS) return;
    await nextTurn();
    this.last = performance.now();
  }
}
