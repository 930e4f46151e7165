// The parts of a server plan beyond paths and destinations, in the same shapes as the daemon's
// configuration file (config/automation.ts), so a plan means the same on a server as in a config file:
// streamed sources (database dumps, command output), hooks, notifications, and a retention policy.
// Checked here with the configuration's own schemas; a problem names its field ("sources.0.database:
// …") so the dashboard shows it beside that field.
import { z } from 'zod';
import { defaultFileName, planAutomationShape, RetentionSchema, type HooksConfig, type NotifyConfig, type RetentionConfig, type SourceConfig } from '../../config/automation.ts';
import { HttpError } from '../http-error.ts';

const ExtrasSchema = z.object({
  sources: planAutomationShape.sources,
  hooks: planAutomationShape.hooks,
  notify: planAutomationShape.notify,
  retention: RetentionSchema.optional(),
  /** The daemon's pruneEvery, worded for the plans editor. */
  pruneEvery: z.number().int().min(1, 'a number of runs, 1 or more (1 prunes after every run)').optional(),
});

export interface PlanExtras {
  readonly sources?: SourceConfig[];
  readonly hooks?: HooksConfig;
  readonly notify?: NotifyConfig;
  readonly retention?: RetentionConfig;
  /** With a retention: prune after every N-th completed run. */
  readonly pruneEvery?: number;
}

/** The fields' JSON schemas for the route: shapes only; checkPlanExtras says what is wrong inside. */
export const planExtrasBody = {
  sources: { type: 'array', maxItems: 20, items: { type: 'object' } },
  hooks: { type: 'object' },
  notify: { type: 'object' },
  retention: { type: 'object' },
  pruneEvery: { type: ['integer', 'null'] },
} as const;

/** The extras of a request body, checked; a 400 naming the first field in error otherwise. */
export function checkPlanExtras(body: Record<string, unknown>): PlanExtras {
  const parsed = ExtrasSchema.safeParse({ sources: body.sources, hooks: body.hooks, notify: body.notify, retention: body.retention, pruneEvery: body.pruneEvery ?? undefined });
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new HttpError(400, `${issue.path.join('.')}: ${issue.message}`);
  }
  const names = new Set<string>();
  for (const [i, s] of (parsed.data.sources ?? []).entries()) {
    const name = defaultFileName(s);
    if (names.has(name)) throw new HttpError(400, `sources.${i}.filename: two sources would be stored under "${name}"; give one a filename of its own`);
    names.add(name);
  }
  const out: { -readonly [K in keyof PlanExtras]: PlanExtras[K] } = {};
  if (parsed.data.sources?.length) out.sources = parsed.data.sources;
  if (parsed.data.hooks && Object.keys(parsed.data.hooks).length) out.hooks = parsed.data.hooks;
  if (parsed.data.notify && Object.keys(parsed.data.notify).length) out.notify = parsed.data.notify;
  if (parsed.data.retention && Object.keys(parsed.data.retention).length) out.retention = parsed.data.retention;
  if (parsed.data.pruneEvery !== undefined) out.pruneEvery = parsed.data.pruneEvery;
  return out;
}

/**
 * Only the extras a body names replace the stored ones (a PUT leaves out what it does not change; a
 * new plan merges onto none). pruneEvery needs a retention policy beside it.
 */
export function mergeExtras(old: PlanExtras, body: Record<string, unknown>, checked: PlanExtras): PlanExtras {
  const merged: { -readonly [K in keyof PlanExtras]: PlanExtras[K] } = { ...old };
  for (const key of ['sources', 'hooks', 'notify', 'retention', 'pruneEvery'] as const) {
    if (body[key] === undefined) continue;
    if (checked[key] === undefined) delete merged[key];
    else (merged as Record<string, unknown>)[key] = checked[key];
  }
  if (merged.pruneEvery !== undefined && !merged.retention) {
    throw new HttpError(400, 'pruneEvery: pruning after runs comes with a retention policy (keepLast, keepDaily…); add one, or leave pruneEvery out');
  }
  return merged;
}
