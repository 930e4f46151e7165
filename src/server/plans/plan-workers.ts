// A plan's workers: `workers: N` splits each run into shards for N of the owner's online agents, and
// `workerLabel: L` for every agent of the owner with label L; the plan's own agent coordinates (it
// splits and merges: only agents hold the repository passphrase). `allowPartial` lets a run whose shard
// failed for good leave a snapshot marked partial. See docs/SCALE-OUT.md.
import { labelProblem } from '../../agent/labels.ts';
import type { ScaleOutParams } from '../../agent/protocol.ts';
import { agentLabels } from '../agents/agents.ts';
import type { ServerContext } from '../context.ts';
import type { Plan } from '../db/schema.ts';
import { HttpError } from '../http-error.ts';

export interface PlanWorkers {
  readonly workers?: number;
  readonly workerLabel?: string;
  readonly allowPartial?: boolean;
}

export const planWorkersBody = {
  workers: { type: ['integer', 'null'], minimum: 2, maximum: 64 },
  workerLabel: { type: ['string', 'null'], maxLength: 100 },
  allowPartial: { type: ['boolean', 'null'] },
} as const;

/** A stored spec less its workers' fields (mergeWorkers decides those). */
export function withoutWorkers<T extends PlanWorkers>(spec: T): Omit<T, keyof PlanWorkers> {
  const { workers: _workers, workerLabel: _label, allowPartial: _partial, ...rest } = spec;
  return rest;
}

/** The fields a body names replace the stored ones (null removes one); checked together. */
export function mergeWorkers(old: PlanWorkers, body: { workers?: number | null; workerLabel?: string | null; allowPartial?: boolean | null; sources?: unknown }, sources: boolean): PlanWorkers {
  // Only the workers' fields: the rest of the spec is merged by the caller.
  const merged: { -readonly [K in keyof PlanWorkers]: PlanWorkers[K] } = {
    ...(old.workers !== undefined ? { workers: old.workers } : {}),
    ...(old.workerLabel !== undefined ? { workerLabel: old.workerLabel } : {}),
    ...(old.allowPartial !== undefined ? { allowPartial: old.allowPartial } : {}),
  };
  for (const key of ['workers', 'workerLabel', 'allowPartial'] as const) {
    const value = body[key];
    if (value === undefined) continue;
    if (value === null) delete merged[key];
    else (merged as Record<string, unknown>)[key] = value;
  }
  if (merged.workerLabel !== undefined) {
    const problem = labelProblem(merged.workerLabel);
    if (problem) throw new HttpError(400, `workerLabel: ${problem}`);
  }
  if (merged.workers !== undefined && merged.workerLabel !== undefined) throw new HttpError(400, 'workers and workerLabel: give one, a number of agents or the label of the agents that work on the plan');
  const scaled = merged.workers !== undefined || merged.workerLabel !== undefined;
  if (scaled && sources) throw new HttpError(400, 'sources: a plan with workers backs up files only; put database dumps and command output in a plan of their own');
  if (merged.allowPartial !== undefined && !scaled) throw new HttpError(400, 'allowPartial: only a plan with workers or workerLabel has shards that can fail alone');
  return merged;
}

/** A run's scale-out: the split is made for the number of workers the plan has now. */
export async function scaleOutParams(ctx: ServerContext, plan: Plan, spec: PlanWorkers): Promise<ScaleOutParams | undefined> {
  const partial = spec.allowPartial ? { allowPartial: true } : {};
  if (spec.workers !== undefined) return { workers: spec.workers, ...partial };
  if (spec.workerLabel === undefined) return undefined;
  const agents = await ctx.db.selectFrom('agents').select('labels').where('user_id', '=', plan.user_id).execute();
  const labelled = agents.filter((a) => agentLabels(a).includes(spec.workerLabel!)).length;
  return { workers: Math.max(1, labelled), label: spec.workerLabel, ...partial };
}
