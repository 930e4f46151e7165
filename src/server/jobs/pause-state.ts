// The global pause's state (dashboard/pause.ts sets and lifts it): a row of `settings` per user, so every
// server process sees it, and the dispatcher (jobs/lifecycle.ts) hands a paused user's agents nothing.
import type { ServerContext } from '../context.ts';

export interface PauseRecord {
  readonly at: number;
  /** The jobs the pause stopped, resumed when it is lifted (a job paused by hand stays paused). */
  readonly jobs: string[];
}

export const pauseKey = (userId: string): string => `paused:${userId}`;

export async function pauseRecord(ctx: ServerContext, userId: string): Promise<PauseRecord | undefined> {
  const row = await ctx.db.selectFrom('settings').select('value').where('key', '=', pauseKey(userId)).executeTakeFirst();
  return row ? (JSON.parse(row.value) as PauseRecord) : undefined;
}

/** Whether the owner of this agent has paused everything: the dispatcher then hands it nothing. */
export async function agentOwnerPaused(ctx: ServerContext, agentId: string): Promise<boolean> {
  const agent = await ctx.db.selectFrom('agents').select('user_id').where('id', '=', agentId).executeTakeFirst();
  return agent !== undefined && (await pauseRecord(ctx, agent.user_id)) !== undefined;
}
