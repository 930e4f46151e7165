// Retention policies: which snapshots of one group `forget` keeps, and why. The rules are restic's
// (policy.go), so users moving over get the same answers: snapshots are taken newest first; a count
// rule keeps the newest snapshot of each of its last N periods *that have snapshots*; `keepWithin`
// rules count back from the newest snapshot, not from now; tags keep without counting. Periods are
// in the local time zone of the machine that runs forget (what "daily" means to its user).
import type { StoredSnapshot } from '../repo/repository.ts';

/** N periods to keep, or -1 for every period. */
export type KeepCount = number;

export interface RetentionPolicy {
  readonly keepLast?: KeepCount;
  readonly keepHourly?: KeepCount;
  readonly keepDaily?: KeepCount;
  readonly keepWeekly?: KeepCount;
  readonly keepMonthly?: KeepCount;
  readonly keepYearly?: KeepCount;
  /** Durations such as '30d', '1y6m', '2w', '12h' (y, m = months, w, d, h). */
  readonly keepWithin?: string;
  readonly keepWithinHourly?: string;
  readonly keepWithinDaily?: string;
  readonly keepWithinWeekly?: string;
  readonly keepWithinMonthly?: string;
  readonly keepWithinYearly?: string;
  /** Keep snapshots carrying every tag of any entry ('a,b' needs both). */
  readonly keepTag?: readonly string[];
}

export interface RetentionDecision {
  readonly snapshot: StoredSnapshot;
  readonly keep: boolean;
  /** Why it is kept ('daily snapshot', 'within 30d', 'has tag important'…); empty when removed. */
  readonly reasons: readonly string[];
}

export class PolicyError extends Error {
  override name = 'PolicyError';
}

export interface Duration {
  readonly years: number;
  readonly months: number;
  readonly days: number;
  readonly hours: number;
}

const DURATION = /^(?:\d+[ymwdh])+$/;

/** '1y6m', '30d', '2w', '36h' → calendar parts (weeks become days). */
export function parseDuration(text: string): Duration {
  if (!DURATION.test(text)) throw new PolicyError(`"${text}" is not a duration; write a number and a unit, several if needed: 1y6m, 30d, 2w, 12h (y, m = months, w, d, h)`);
  const parts = { years: 0, months: 0, days: 0, hours: 0 };
  for (const [, n, unit] of text.matchAll(/(\d+)([ymwdh])/g)) {
    const value = Number(n);
    if (unit === 'y') parts.years += value;
    else if (unit === 'm') parts.months += value;
    else if (unit === 'w') parts.days += 7 * value;
    else if (unit === 'd') parts.days += value;
    else parts.hours += value;
  }
  return parts;
}

/** `time` minus `d`, by the calendar (a month back from 31 March is 3 March, as Go's AddDate does). */
function before(time: Date, d: Duration): Date {
  const t = new Date(time);
  t.setFullYear(t.getFullYear() - d.years, t.getMonth() - d.months, t.getDate() - d.days);
  t.setHours(t.getHours() - d.hours);
  return t;
}

const COUNT_RULES = ['keepLast', 'keepHourly', 'keepDaily', 'keepWeekly', 'keepMonthly', 'keepYearly'] as const;
const WITHIN_RULES = ['keepWithinHourly', 'keepWithinDaily', 'keepWithinWeekly', 'keepWithinMonthly', 'keepWithinYearly'] as const;

/** ISO 8601 week of `t`'s local date: the year and number of the week's Thursday. */
function isoWeek(t: Date): string {
  const thursday = new Date(Date.UTC(t.getFullYear(), t.getMonth(), t.getDate()));
  thursday.setUTCDate(thursday.getUTCDate() + 4 - (thursday.getUTCDay() || 7));
  const yearStart = Date.UTC(thursday.getUTCFullYear(), 0, 1);
  return `${thursday.getUTCFullYear()}-W${Math.ceil(((thursday.getTime() - yearStart) / 86_400_000 + 1) / 7)}`;
}

type Period = 'hourly' | 'daily' | 'weekly' | 'monthly' | 'yearly';

function periodOf(t: Date, period: Period): string {
  switch (period) {
    case 'hourly':
      return `${t.getFullYear()}-${t.getMonth()}-${t.getDate()} ${t.getHours()}`;
    case 'daily':
      return `${t.getFullYear()}-${t.getMonth()}-${t.getDate()}`;
    case 'weekly':
      return isoWeek(t);
    case 'monthly':
      return `${t.getFullYear()}-${t.getMonth()}`;
    case 'yearly':
      return `${t.getFullYear()}`;
  }
}

const PERIOD_OF_RULE: Record<(typeof COUNT_RULES)[number] | (typeof WITHIN_RULES)[number], Period | 'last'> = {
  keepLast: 'last',
  keepHourly: 'hourly',
  keepDaily: 'daily',
  keepWeekly: 'weekly',
  keepMonthly: 'monthly',
  keepYearly: 'yearly',
  keepWithinHourly: 'hourly',
  keepWithinDaily: 'daily',
  keepWithinWeekly: 'weekly',
  keepWithinMonthly: 'monthly',
  keepWithinYearly: 'yearly',
};

const REASON: Record<Period | 'last', string> = {
  last: 'last snapshot',
  hourly: 'hourly snapshot',
  daily: 'daily snapshot',
  weekly: 'weekly snapshot',
  monthly: 'monthly snapshot',
  yearly: 'yearly snapshot',
};

/** Checks a policy; throws a PolicyError naming the first bad rule. */
export function validatePolicy(policy: RetentionPolicy): void {
  for (const rule of COUNT_RULES) {
    const n = policy[rule];
    if (n !== undefined && !(Number.isInteger(n) && n >= -1)) throw new PolicyError(`${rule} takes a whole number of snapshots (or -1 for all), not ${n}`);
  }
  for (const rule of ['keepWithin', ...WITHIN_RULES] as const) {
    const d = policy[rule];
    if (d !== undefined) parseDuration(d);
  }
  for (const tags of policy.keepTag ?? []) if (tags.split(',').some((t) => t === '')) throw new PolicyError(`keepTag "${tags}" has an empty tag`);
}

/** True when the policy keeps nothing by itself (forget refuses to apply it: it would remove everything). */
export function isEmptyPolicy(policy: RetentionPolicy): boolean {
  return (
    COUNT_RULES.every((r) => !policy[r]) &&
    ['keepWithin', ...WITHIN_RULES].every((r) => policy[r as keyof RetentionPolicy] === undefined) &&
    !(policy.keepTag?.length)
  );
}

/** Decides for one group of snapshots (any order); returns decisions newest first. */
export function applyRetention(group: readonly StoredSnapshot[], policy: RetentionPolicy): RetentionDecision[] {
  validatePolicy(policy);
  const newestFirst = [...group].sort((a, b) => b.snapshot.time.localeCompare(a.snapshot.time) || b.id.localeCompare(a.id));
  if (newestFirst.length === 0) return [];
  const latest = new Date(newestFirst[0]!.snapshot.time);
  const counters = COUNT_RULES.filter((r) => policy[r]).map((rule) => ({ rule, left: policy[rule]!, last: undefined as string | undefined }));
  const withins = WITHIN_RULES.filter((r) => policy[r] !== undefined).map((rule) => ({
    rule,
    text: policy[rule]!,
    cutoff: before(latest, parseDuration(policy[rule]!)),
    last: undefined as string | undefined,
  }));
  const withinCutoff = policy.keepWithin !== undefined ? before(latest, parseDuration(policy.keepWithin)) : undefined;
  const tagSets = (policy.keepTag ?? []).map((t) => t.split(','));
  return newestFirst.map((s, position) => {
    const time = new Date(s.snapshot.time);
    const reasons: string[] = [];
    for (const tags of tagSets) if (tags.every((t) => s.snapshot.tags.includes(t))) reasons.push(`has tag${tags.length > 1 ? 's' : ''} ${tags.join(',')}`);
    if (withinCutoff && time > withinCutoff) reasons.push(`within ${policy.keepWithin}`);
    for (const c of counters) {
      if (c.left === 0) continue;
      const period = PERIOD_OF_RULE[c.rule];
      const value = period === 'last' ? String(position) : periodOf(time, period);
      if (value === c.last) continue;
      c.last = value;
      if (c.left > 0) c.left--;
      reasons.push(REASON[period]);
    }
    for (const w of withins) {
      if (!(time > w.cutoff)) continue;
      const period = PERIOD_OF_RULE[w.rule] as Period;
      const value = periodOf(time, period);
      if (value === w.last) continue;
      w.last = value;
      reasons.push(`${REASON[period]} within ${w.text}`);
    }
    return { snapshot: s, keep: reasons.length > 0, reasons };
  });
}
