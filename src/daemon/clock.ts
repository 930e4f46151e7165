// Time as the scheduler sees it. Two clocks: the wall clock (what cron schedules are about, and what a
// person or NTP may set, or what jumps forward when the machine wakes from sleep) and a monotonic clock
// that never jumps and stands still while the machine sleeps. Comparing the two tells a wake or a
// clock change from a timer that simply fired on time.
//
// Interface (shared by the daemon and the fleet server):
//   Clock.now()                 wall-clock milliseconds since the epoch
//   Clock.monotonic()           milliseconds from an arbitrary origin, never jumping
//   Clock.setTimer(fn, ms)      a one-shot timer; any delay is safe (capped at MAX_TIMER_MS: callers
//                               that wait longer re-check, as the scheduler does)
//   systemClock                 the real clocks
//   offsetClock(file)           test mode: the wall clock plus the milliseconds written in `file`
import fs from 'node:fs';

/** Node fires a timer longer than 2^31-1 ms (about 24.8 days) at once, with a warning: never ask for more. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export interface Timer {
  cancel(): void;
}

export interface Clock {
  now(): number;
  monotonic(): number;
  setTimer(fn: () => void, ms: number): Timer;
}

function realTimer(fn: () => void, ms: number): Timer {
  const handle = setTimeout(fn, Math.min(Math.max(0, ms), MAX_TIMER_MS));
  return { cancel: () => clearTimeout(handle) };
}

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimer: realTimer,
};

/**
 * The real clocks, with the wall clock moved by the number of milliseconds written in `file` (read at
 * every call; a missing or empty file is 0). Writing a bigger number is what a machine waking from
 * sleep looks like to the daemon: the wall clock jumps, the monotonic clock does not. Tests of a real
 * daemon process use it through COFFER_TEST_CLOCK (see docs/DAEMON.md).
 */
export function offsetClock(file: string): Clock {
  const offset = (): number => {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8').trim();
    } catch {
      return 0;
    }
    const value = Number(text || '0');
    return Number.isFinite(value) ? value : 0;
  };
  return { now: () => Date.now() + offset(), monotonic: systemClock.monotonic, setTimer: realTimer };
}
