// The scheduler: says when each plan is due. It keeps no job state and starts nothing itself; whoever
// owns the queue (the daemon's task manager, the fleet server's job engine) acts on `onDue`.
//
// Rules:
// - A plan is due at each slot of its cron schedule; after firing, the next slot is computed from the
//   current time, so a run that failed or succeeded is rescheduled alike, and missed slots collapse.
// - Overdue: a slot missed by more than `graceMs` (default one minute) — the process was not running,
//   the machine slept, the wall clock was set ahead — fires once, as soon as it is seen, with reason
//   'overdue'; never once per missed slot. At start-up a plan is overdue when its history says it has
//   not run since its latest slot; a plan with no history at all waits for its next slot.
// - Safe timers: one timer at a time, never longer than `checkIntervalMs` (default one minute), so a
//   slot months away still fires (Node's timers overflow after ~24.8 days) and a wake from sleep is
//   noticed within that interval.
// - Clock jumps: every tick compares the wall clock's progress with the monotonic clock's. Forward
//   (sleep, clock set ahead): due plans fire as overdue. Backward (clock set back): the next slots are
//   recomputed, never before a slot that already fired, so no slot runs twice.
//
// Interface:
//   new Scheduler({ clock?, history, onDue, onClockJump?, onError?, graceMs?, checkIntervalMs?, jumpToleranceMs? })
//   scheduler.setPlans([{ name, schedule }])   add, change or drop plans (at start-up and on reload)
//   scheduler.start() / stop()
//   scheduler.upcoming()                       [{ plan, at }] the next slot of each plan
import { systemClock, type Clock, type Timer } from './clock.ts';
import { latestSlot, nextSlot, type Schedule } from '../config/schedule.ts';

export type DueReason = 'schedule' | 'overdue';

export interface DueEvent {
  readonly plan: string;
  readonly reason: DueReason;
  /** The slot that fired (for an overdue plan, the latest one missed). */
  readonly slot: number;
  /** How late it fires, in milliseconds. */
  readonly lateMs: number;
}

export interface ClockJump {
  /** Positive: the wall clock moved ahead of the monotonic clock (a wake from sleep, a clock set ahead). */
  readonly byMs: number;
  readonly at: number;
}

/** Where the scheduler learns whether a plan ran since its latest slot (the job database, the server's). */
export interface ScheduleHistory {
  /** When the plan was last started or queued, in ms since the epoch; undefined if never. */
  lastRun(plan: string): number | undefined;
}

export interface ScheduledPlan {
  readonly name: string;
  readonly schedule: Schedule;
}

export interface SchedulerOptions {
  readonly clock?: Clock;
  readonly history: ScheduleHistory;
  readonly onDue: (event: DueEvent) => void;
  readonly onClockJump?: (jump: ClockJump) => void;
  /** An exception thrown by onDue; the scheduler carries on. Default: rethrown outside the tick. */
  readonly onError?: (err: unknown) => void;
  readonly graceMs?: number;
  readonly checkIntervalMs?: number;
  readonly jumpToleranceMs?: number;
}

export const DEFAULT_GRACE_MS = 60_000;
export const DEFAULT_CHECK_INTERVAL_MS = 60_000;
export const DEFAULT_JUMP_TOLERANCE_MS = 5_000;

interface PlanState {
  schedule: Schedule;
  next: number | undefined;
  /** The last slot that fired (so a clock set back does not fire it again). */
  fired: number | undefined;
}

export class Scheduler {
  private readonly clock: Clock;
  private readonly options: SchedulerOptions;
  private readonly plans = new Map<string, PlanState>();
  private timer: Timer | undefined;
  private running = false;
  private lastWall = 0;
  private lastMonotonic = 0;

  constructor(options: SchedulerOptions) {
    this.options = options;
    this.clock = options.clock ?? systemClock;
  }

  private get graceMs(): number {
    return this.options.graceMs ?? DEFAULT_GRACE_MS;
  }

  /**
   * Replaces the set of plans. A plan whose schedule is unchanged keeps its state; a new or changed one
   * is checked against its history (overdue once) when the scheduler runs.
   */
  setPlans(plans: readonly ScheduledPlan[]): void {
    const names = new Set(plans.map((p) => p.name));
    for (const name of this.plans.keys()) if (!names.has(name)) this.plans.delete(name);
    const added: string[] = [];
    for (const plan of plans) {
      const known = this.plans.get(plan.name);
      if (known && sameSchedule(known.schedule, plan.schedule)) continue;
      this.plans.set(plan.name, { schedule: plan.schedule, next: undefined, fired: undefined });
      added.push(plan.name);
    }
    if (this.running) {
      this.catchUp(added);
      this.arm();
    }
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.lastWall = this.clock.now();
    this.lastMonotonic = this.clock.monotonic();
    this.catchUp([...this.plans.keys()]);
    this.arm();
  }

  stop(): void {
    this.running = false;
    this.timer?.cancel();
    this.timer = undefined;
  }

  upcoming(): { plan: string; at: number }[] {
    return [...this.plans].flatMap(([plan, state]) => (state.next === undefined ? [] : [{ plan, at: state.next }]));
  }

  /** First look at plans: fire those that have not run since their latest slot, then schedule them. */
  private catchUp(names: readonly string[]): void {
    const now = this.clock.now();
    for (const name of names) {
      const state = this.plans.get(name)!;
      const slot = latestSlot(state.schedule, now);
      const last = this.options.history.lastRun(name);
      state.next = nextSlot(state.schedule, now);
      if (slot !== undefined && last !== undefined && last < slot) this.fire(name, state, slot, now);
    }
  }

  private fire(plan: string, state: PlanState, slot: number, now: number): void {
    state.fired = slot;
    const lateMs = now - slot;
    try {
      this.options.onDue({ plan, reason: lateMs > this.graceMs ? 'overdue' : 'schedule', slot, lateMs });
    } catch (err) {
      if (this.options.onError) this.options.onError(err);
      else queueMicrotask(() => {
        throw err;
      });
    }
  }

  private tick(): void {
    this.timer = undefined;
    if (!this.running) return;
    const now = this.clock.now();
    const monotonic = this.clock.monotonic();
    const drift = now - (this.lastWall + (monotonic - this.lastMonotonic));
    this.lastWall = now;
    this.lastMonotonic = monotonic;
    if (Math.abs(drift) > (this.options.jumpToleranceMs ?? DEFAULT_JUMP_TOLERANCE_MS)) {
      this.options.onClockJump?.({ byMs: drift, at: now });
      if (drift < 0) {
        for (const state of this.plans.values()) state.next = nextSlot(state.schedule, Math.max(now, state.fired ?? now));
      }
    }
    for (const [name, state] of this.plans) {
      if (state.next === undefined || state.next > now) continue;
      // Every slot missed in between collapses into this one firing.
      const slot = latestSlot(state.schedule, now) ?? state.next;
      state.next = nextSlot(state.schedule, now);
      this.fire(name, state, slot, now);
    }
    this.arm();
  }

  private arm(): void {
    this.timer?.cancel();
    if (!this.running) return;
    const now = this.clock.now();
    let delay = this.options.checkIntervalMs ?? DEFAULT_CHECK_INTERVAL_MS;
    for (const state of this.plans.values()) if (state.next !== undefined) delay = Math.min(delay, Math.max(0, state.next - now));
    this.timer = this.clock.setTimer(() => this.tick(), delay);
  }
}

function sameSchedule(a: Schedule, b: Schedule): boolean {
  return a.spec.cron === b.spec.cron && a.spec.timezone === b.spec.timezone;
}
