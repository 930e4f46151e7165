import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_TIMER_MS } from '../src/daemon/clock.ts';
import { latestSlot, nextSlot, parseSchedule, ScheduleError } from '../src/config/schedule.ts';
import { Scheduler, type ClockJump, type DueEvent } from '../src/daemon/scheduler.ts';
import { FakeClock } from './helpers/fake-clock.ts';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

function setup(start: string, plans: Record<string, { cron: string; timezone?: string; lastRun?: string }>) {
  const clock = new FakeClock(start);
  const fired: (DueEvent & { at: string })[] = [];
  const jumps: ClockJump[] = [];
  const lastRun = new Map(Object.entries(plans).flatMap(([name, p]) => (p.lastRun ? [[name, Date.parse(p.lastRun)] as const] : [])));
  const scheduler = new Scheduler({
    clock,
    history: { lastRun: (plan) => lastRun.get(plan) },
    onDue: (e) => {
      fired.push({ ...e, at: new Date(clock.now()).toISOString() });
      lastRun.set(e.plan, clock.now());
    },
    onClockJump: (j) => jumps.push(j),
  });
  scheduler.setPlans(Object.entries(plans).map(([name, p]) => ({ name, schedule: parseSchedule({ cron: p.cron, ...(p.timezone ? { timezone: p.timezone } : {}) }) })));
  return { clock, fired, jumps, scheduler };
}

test('schedules: parse errors name the problem; time zones and daylight saving are respected', () => {
  assert.throws(() => parseSchedule({ cron: '61 * * * *' }), (e: Error) => e instanceof ScheduleError && /"61 \* \* \* \*" is not a cron schedule/.test(e.message) && /minute/.test(e.message));
  assert.throws(() => parseSchedule({ cron: 'daily' }), /is not a cron schedule.*five fields/);
  assert.throws(() => parseSchedule({ cron: '0 3 * * *', timezone: 'Europe/Atlantis' }), /unknown time zone "Europe\/Atlantis"/);
  assert.throws(() => parseSchedule({ cron: '0 0 30 2 *' }), /never fires/);
  const berlin = parseSchedule({ cron: '0 3 * * *', timezone: 'Europe/Berlin' });
  // 03:00 in Berlin is 02:00 UTC in winter and 01:00 UTC in summer (the switch is on 29 March 2026).
  assert.equal(new Date(nextSlot(berlin, Date.parse('2026-03-28T00:00:00Z'))!).toISOString(), '2026-03-28T02:00:00.000Z');
  assert.equal(new Date(nextSlot(berlin, Date.parse('2026-03-28T02:00:00Z'))!).toISOString(), '2026-03-29T01:00:00.000Z');
  assert.equal(latestSlot(berlin, Date.parse('2026-03-29T01:00:00Z')), Date.parse('2026-03-29T01:00:00Z'));
  assert.equal(latestSlot(berlin, Date.parse('2026-03-29T00:59:59Z')), Date.parse('2026-03-28T02:00:00Z'));
  const seconds = parseSchedule({ cron: '*/10 * * * * *' });
  assert.equal(nextSlot(seconds, Date.parse('2026-01-01T00:00:05Z')), Date.parse('2026-01-01T00:00:10Z'));
});

test('a plan fires at each slot and is rescheduled after it, on time', () => {
  const { clock, fired, scheduler } = setup('2026-01-01T00:00:00Z', { db: { cron: '*/15 * * * *' } });
  scheduler.start();
  clock.advance(HOUR);
  assert.deepEqual(
    fired.map((f) => [f.at, f.reason, f.lateMs]),
    [
      ['2026-01-01T00:15:00.000Z', 'schedule', 0],
      ['2026-01-01T00:30:00.000Z', 'schedule', 0],
      ['2026-01-01T00:45:00.000Z', 'schedule', 0],
      ['2026-01-01T01:00:00.000Z', 'schedule', 0],
    ],
  );
});

test('start-up: a plan that missed its slot runs once; one with no history or that ran since waits', () => {
  const { clock, fired, scheduler } = setup('2026-01-10T12:00:00Z', {
    // Missed the last three days' 03:00 runs: one run now, not three.
    missed: { cron: '0 3 * * *', lastRun: '2026-01-07T03:00:05Z' },
    ranSince: { cron: '0 3 * * *', lastRun: '2026-01-10T03:00:01Z' },
    neverRan: { cron: '0 3 * * *' },
  });
  scheduler.start();
  assert.deepEqual(
    fired.map((f) => [f.plan, f.reason, new Date(f.slot).toISOString()]),
    [['missed', 'overdue', '2026-01-10T03:00:00.000Z']],
  );
  clock.advance(DAY);
  assert.deepEqual(fired.slice(1).map((f) => [f.plan, f.at]).sort(), [
    ['missed', '2026-01-11T03:00:00.000Z'],
    ['neverRan', '2026-01-11T03:00:00.000Z'],
    ['ranSince', '2026-01-11T03:00:00.000Z'],
  ]);
  scheduler.stop();
});

test('a start within the grace minute after a slot runs it as a normal scheduled run', () => {
  const { fired, scheduler } = setup('2026-01-10T03:00:30Z', { db: { cron: '0 3 * * *', lastRun: '2026-01-09T03:00:00Z' } });
  scheduler.start();
  assert.deepEqual(fired.map((f) => [f.reason, f.lateMs]), [['schedule', 30_000]]);
});

test('a machine that sleeps through several slots runs the plan once on waking, as overdue', () => {
  const { clock, fired, jumps, scheduler } = setup('2026-01-01T00:00:00Z', { db: { cron: '0 * * * *' } });
  scheduler.start();
  clock.advance(HOUR + MIN);
  assert.equal(fired.length, 1);
  clock.sleep(5 * HOUR);
  // Timers run on the monotonic clock, which stood still: the next check is at most a minute later.
  clock.advance(MIN);
  assert.equal(fired.length, 2);
  assert.equal(fired[1]!.reason, 'overdue');
  assert.equal(fired[1]!.at.slice(11, 16), '06:02');
  assert.equal(new Date(fired[1]!.slot).toISOString(), '2026-01-01T06:00:00.000Z');
  assert.equal(jumps.length, 1);
  assert.ok(Math.abs(jumps[0]!.byMs - 5 * HOUR) < 1000);
  clock.advance(HOUR);
  assert.deepEqual(fired.slice(2).map((f) => [f.at, f.reason]), [['2026-01-01T07:00:00.000Z', 'schedule']]);
});

test('a clock set back never runs a slot twice, and the schedule follows the new time', () => {
  const { clock, fired, jumps, scheduler } = setup('2026-01-01T02:59:00Z', { db: { cron: '0 3 * * *' } });
  scheduler.start();
  clock.advance(2 * MIN);
  assert.equal(fired.length, 1);
  clock.setWall('2026-01-01T02:30:00Z');
  clock.advance(DAY + HOUR);
  assert.ok(jumps.some((j) => j.byMs < -20 * MIN));
  // The next run is the next day's 03:00 in the new time, once.
  assert.deepEqual(fired.map((f) => f.at), ['2026-01-01T03:00:00.000Z', '2026-01-02T03:00:00.000Z']);
});

test('a slot months away still fires, and no timer is ever longer than the safe limit', () => {
  const { clock, fired, scheduler } = setup('2026-01-01T00:00:00Z', { yearly: { cron: '0 0 1 7 *' } });
  scheduler.start();
  assert.equal(new Date(scheduler.upcoming()[0]!.at).toISOString(), '2026-07-01T00:00:00.000Z');
  clock.advance(200 * DAY);
  assert.deepEqual(fired.map((f) => [f.at, f.reason]), [['2026-07-01T00:00:00.000Z', 'schedule']]);
  assert.ok(clock.delays.every((d) => d >= 0 && d <= 60_000 && d < MAX_TIMER_MS));
});

test('plans can be added, changed and dropped while it runs', () => {
  const { clock, fired, scheduler } = setup('2026-01-01T00:00:00Z', { a: { cron: '*/30 * * * *' } });
  scheduler.start();
  clock.advance(31 * MIN);
  scheduler.setPlans([
    { name: 'a', schedule: parseSchedule({ cron: '0 * * * *' }) },
    { name: 'b', schedule: parseSchedule({ cron: '45 * * * *' }) },
  ]);
  clock.advance(HOUR);
  scheduler.setPlans([{ name: 'b', schedule: parseSchedule({ cron: '45 * * * *' }) }]);
  clock.advance(HOUR);
  assert.deepEqual(fired.map((f) => [f.plan, f.at.slice(11, 16)]), [
    ['a', '00:30'],
    ['b', '00:45'],
    ['a', '01:00'],
    ['b', '01:45'],
  ]);
  scheduler.stop();
  clock.advance(DAY);
  assert.equal(fired.length, 4);
});
