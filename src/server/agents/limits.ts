// The bandwidth limits the server tells an agent about: its own and those of its user's destinations.
// They travel whole (AgentLimits) in the welcome, on every socket (re)connection and after every change,
// so a running job follows a limit changed on the dashboard at once, whichever limit it is.
import type { AgentLimits, Limits } from '../../agent/protocol.ts';
import type { ServerContext } from '../context.ts';
import type { Agent, Destination } from '../db/schema.ts';

function limitsOf(row: Pick<Agent | Destination, 'upload_limit' | 'download_limit'>): Limits {
  return { ...(row.upload_limit ? { upload: row.upload_limit } : {}), ...(row.download_limit ? { download: row.download_limit } : {}) };
}

/** A destination's own limits, as a job's DestinationRef carries them. */
export const destinationLimits = (destination: Destination): Limits => limitsOf(destination);

/** The limits for this agent as they are now in the database. */
export async function currentLimits(ctx: ServerContext, agentId: string): Promise<AgentLimits | undefined> {
  const agent = await ctx.db.selectFrom('agents').selectAll().where('id', '=', agentId).executeTakeFirst();
  if (!agent) return undefined;
  const destinations = await ctx.db.selectFrom('destinations').select(['id', 'upload_limit', 'download_limit']).where('user_id', '=', agent.user_id).execute();
  return { limits: limitsOf(agent), destinations: Object.fromEntries(destinations.map((d) => [d.id, limitsOf(d)])) };
}

/** Tells the user's agents (or just `agentIds`) their limits after a change, through the event log. */
export async function announceLimits(ctx: ServerContext, userId: string, agentIds?: readonly string[]): Promise<void> {
  const ids = agentIds ?? (await ctx.db.selectFrom('agents').select('id').where('user_id', '=', userId).execute()).map((a) => a.id);
  for (const agentId of ids) {
    const limits = await currentLimits(ctx, agentId);
    if (limits) await ctx.events.append({ agentId, type: 'agent.message', data: { type: 'limits', ...limits } });
  }
}
