// A clock for scheduler tests: wall and monotonic time move only when the test says so, timers fire
// in order as time passes, and a "sleep" moves the wall clock alone, as a machine waking up sees it.
import type { Clock, Timer } from '../../src/daemon/clock.ts';

interface Pending {
  readonly at: number;
  readonly fn: () => void;
  cancelled: boolean;
}

export class FakeClock implements Clock {
  wall: number;
  mono = 0;
  private timers: Pending[] = [];
  /** Every delay ever asked for, to check that none overflows. */
  readonly delays: number[] = [];

  constructor(start: string | number) {
    this.wall = typeof start === 'number' ? start : Date.parse(start);
  }

  now(): number {
    return this.wall;
  }

  monotonic(): number {
    return this.mono;
  }

  setTimer(fn: () => void, ms: number): Timer {
    this.delays.push(ms);
    const pending: Pending = { at: this.mono + ms, fn, cancelled: false };
    this.timers.push(pending);
    return { cancel: () => (pending.cancelled = true) };
  }

  /** Lets `ms` pass on both clocks, firing timers as their time comes. */
  advance(ms: number): void {
    const end = this.mono + ms;
    for (;;) {
      this.timers = this.timers.filter((t) => !t.cancelled);
      const next = this.timers.reduce<Pending | undefined>((a, t) => (!a || t.at < a.at ? t : a), undefined);
      if (!next || next.at > end) break;
      this.wall += next.at - this.mono;
      this.mono = next.at;
      this.timers.splice(this.timers.indexOf(next), 1);
      next.fn();
    }
    this.wall += end - this.mono;
    this.mono = end;
  }

  /** The machine sleeps for `ms`: the wall clock moves, the monotonic clock and the timers do not. */
  sleep(ms: number): void {
    this.wall += ms;
  }

  /** Someone sets the wall clock. */
  setWall(time: string | number): void {
    this.wall = typeof time === 'number' ? time : Date.parse(time);
  }
}
