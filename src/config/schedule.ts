// Cron schedules (a plan's `schedule`): parsing with a time zone, and the next or latest slot around a
// given time. Pure: no timers and no clock of its own, so the configuration check, the daemon's
// scheduler, the fleet server and the tests all ask the same questions of it.
//
// Interface:
//   parseSchedule({ cron, timezone? })  → Schedule, or ScheduleError with a message for the user
//   nextSlot(schedule, after)           → the first slot strictly after `after` (ms), or undefined
//   latestSlot(schedule, atOrBefore)    → the last slot at or before the time, or undefined
//   describeSchedule(schedule)          → "0 3 * * * (Europe/Berlin)"
// Cron has five fields (minute hour day month weekday) or six with seconds first; croner also takes
// L, W, # and the nicknames @daily, @hourly, @weekly, @monthly, @yearly.
import { Cron } from 'croner';

export interface ScheduleSpec {
  readonly cron: string;
  /** An IANA time zone (Europe/Berlin); default the machine's local time. */
  readonly timezone?: string;
}

export interface Schedule {
  readonly spec: ScheduleSpec;
  readonly cron: Cron;
}

export class ScheduleError extends Error {
  override name = 'ScheduleError';
}

export function validTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

export function parseSchedule(spec: ScheduleSpec): Schedule {
  if (spec.timezone !== undefined && !validTimeZone(spec.timezone)) {
    throw new ScheduleError(`unknown time zone "${spec.timezone}"; use an IANA name such as Europe/Berlin or UTC`);
  }
  let cron: Cron;
  try {
    cron = new Cron(spec.cron, { paused: true, ...(spec.timezone ? { timezone: spec.timezone } : {}) });
  } catch (err) {
    const detail = (err as Error).message.replace(/^CronPattern: /, '').replace(/^invalid configuration format \('.*'\), /, '').replace(/\.$/, '');
    throw new ScheduleError(`"${spec.cron}" is not a cron schedule (${detail}); use five fields, e.g. "0 3 * * *" for 03:00 every day`);
  }
  const schedule = { spec, cron };
  if (nextSlot(schedule, Date.now()) === undefined) throw new ScheduleError(`"${spec.cron}" never fires (no date matches it)`);
  return schedule;
}

export function nextSlot(schedule: Schedule, after: number): number | undefined {
  return schedule.cron.nextRun(new Date(after))?.getTime();
}

export function latestSlot(schedule: Schedule, atOrBefore: number): number | undefined {
  // previousRuns looks strictly before its reference; a slot exactly at the time counts as passed.
  return schedule.cron.previousRuns(1, new Date(atOrBefore + 1))[0]?.getTime();
}

export function describeSchedule(schedule: Schedule): string {
  return `${schedule.spec.cron}${schedule.spec.timezone ? ` (${schedule.spec.timezone})` : ''}`;
}
