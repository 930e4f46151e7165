// Agents as their owner sees them: status, version (flagged when older than the server), capacity,
// running jobs, and bandwidth limits.
import type { FastifyInstance } from 'fastify';
import { requireSession } from '../auth/guard.ts';
import type { ServerContext } from '../context.ts';
import { HttpError, notFound } from '../http-error.ts';
import { agentOfUser, apiAgent, labelsColumn } from './agents.ts';
import { MAX_LABELS } from '../../agent/labels.ts';
import { announceLimits } from './limits.ts';

async function runningCounts(ctx: ServerContext, userId: string): Promise<Map<string, number>> {
  const rows = await ctx.db.selectFrom('jobs').select(['agent_id', (eb) => eb.fn.countAll<number>().as('n')]).where('user_id', '=', userId).where('status', '=', 'running').groupBy('agent_id').execute();
  return new Map(rows.map((r) => [r.agent_id, Number(r.n)]));
}

export async function agentRoutes(app: FastifyInstance, { ctx }: { ctx: ServerContext }): Promise<void> {
  const lookup = (userId: string, id: string) =>
    agentOfUser(ctx, userId, id).catch(() => {
      throw notFound('agent');
    });

  app.get('/api/agents', { schema: { summary: "the user's agents" } }, async (request) => {
    const { user } = requireSession(request);
    const running = await runningCounts(ctx, user.id);
    const rows = await ctx.db.selectFrom('agents').selectAll().where('user_id', '=', user.id).orderBy('hostname').execute();
    return rows.map((a) => apiAgent(a, running.get(a.id) ?? 0));
  });

  app.get<{ Params: { id: string } }>('/api/agents/:id', { schema: { summary: 'one agent' } }, async (request) => {
    const { user } = requireSession(request);
    const agent = await lookup(user.id, request.params.id);
    return apiAgent(agent, (await runningCounts(ctx, user.id)).get(agent.id) ?? 0);
  });

  app.patch<{ Params: { id: string }; Body: { uploadLimit?: number | null; downloadLimit?: number | null; labels?: string[] } }>(
    '/api/agents/:id',
    {
      schema: {
        summary: "set the agent's bandwidth limits (bytes per second for all its transfers; null: none) or its labels (a scaled-out plan's workers are the agents with its label)",
        body: {
          type: 'object',
          additionalProperties: false,
          properties: { uploadLimit: { type: ['integer', 'null'], minimum: 1 }, downloadLimit: { type: ['integer', 'null'], minimum: 1 }, labels: { type: 'array', maxItems: MAX_LABELS, items: { type: 'string' } } },
        },
      },
    },
    async (request) => {
      const { user } = requireSession(request);
      const agent = await lookup(user.id, request.params.id);
      const set: { upload_limit?: number | null; download_limit?: number | null; labels?: string } = {};
      if (request.body.uploadLimit !== undefined) set.upload_limit = request.body.uploadLimit;
      if (request.body.downloadLimit !== undefined) set.download_limit = request.body.downloadLimit;
      if (request.body.labels !== undefined) set.labels = labelsColumn(request.body.labels);
      if (Object.keys(set).length === 0) throw new HttpError(400, 'give uploadLimit, downloadLimit or labels');
      const updated = await ctx.db.updateTable('agents').set(set).where('id', '=', agent.id).where('user_id', '=', user.id).returningAll().executeTakeFirstOrThrow();
      if (set.upload_limit !== undefined || set.download_limit !== undefined) await announceLimits(ctx, user.id, [agent.id]);
      await ctx.events.append({ userId: user.id, type: 'agent.updated', data: apiAgent(updated) });
      return apiAgent(updated);
    },
  );

  app.delete<{ Params: { id: string } }>('/api/agents/:id', { schema: { summary: 'remove an agent with its plans (history stays until the agent row goes)' } }, async (request) => {
    const { user } = requireSession(request);
    const agent = await lookup(user.id, request.params.id);
    await ctx.events.append({ agentId: agent.id, type: 'agent.message', data: { type: 'revoked', reason: 'the agent was removed on the server' } });
    await ctx.db.deleteFrom('agents').where('id', '=', agent.id).where('user_id', '=', user.id).execute();
    return { ok: true };
  });
}
