// The agent API of scaled-out fleet runs (fleet-shards.ts): the coordinator queues its shards and
// follows them; workers claim, heartbeat and report. Every route takes the agent's API key and its id,
// and sees only its owner's runs; the dashboard reads a job's shards with the user's session.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ShardProgress } from '../../scale-out/shard-worker.ts';
import type { ShardJson } from '../../engine/scale-out/shard-plan.ts';
import { agentOfUser } from '../agents/agents.ts';
import { AGENT_HEADER } from '../agents/hub.ts';
import { requireKey, requireSession } from '../auth/guard.ts';
import type { ServerContext } from '../context.ts';
import type { Agent } from '../db/schema.ts';
import { notFound } from '../http-error.ts';
import type { FleetShardRuns } from './fleet-shards.ts';

/** More shards than this in one run is a coordinator gone wrong (the split makes about four per worker). */
const MAX_SHARDS = 10_000;

export async function fleetShardRoutes(app: FastifyInstance, { ctx, shards }: { ctx: ServerContext; shards: FleetShardRuns }): Promise<void> {
  const agentOf = (request: FastifyRequest): Promise<Agent> => {
    const auth = requireKey(request);
    const header = request.headers[AGENT_HEADER];
    return agentOfUser(ctx, auth.user.id, typeof header === 'string' ? header : undefined);
  };

  app.post<{ Body: { jobId: string; shards: ShardJson[]; parent?: string } }>(
    '/api/agent/shards/runs',
    {
      schema: {
        summary: "a scaled-out job's coordinator queues its shards for the plan's workers",
        body: { type: 'object', additionalProperties: false, required: ['jobId', 'shards'], properties: { jobId: { type: 'string' }, shards: { type: 'array', maxItems: MAX_SHARDS, items: { type: 'object' } }, parent: { type: 'string', pattern: '^[0-9a-f]{64}$' } } },
      },
    },
    async (request, reply) => {
      const agent = await agentOf(request);
      const run = await shards.enqueue(agent, request.body.jobId, request.body.shards, request.body.parent);
      reply.code(201);
      return { run };
    },
  );

  app.get<{ Params: { id: string } }>('/api/agent/shards/runs/:id', { schema: { summary: "the coordinator follows its run: the shards' status, and their outcomes once none is left to run" } }, async (request) => {
    return shards.progress(await agentOf(request), request.params.id);
  });

  app.post<{ Body: { run: string; capacity: number } }>(
    '/api/agent/shards/claim',
    {
      schema: {
        summary: "a worker claims up to `capacity` of a run's shards (fewer when the agent is busy); `over`: the run is gone",
        body: { type: 'object', additionalProperties: false, required: ['run', 'capacity'], properties: { run: { type: 'string' }, capacity: { type: 'integer', minimum: 0, maximum: 64 } } },
      },
    },
    async (request) => shards.claim(await agentOf(request), request.body.run, request.body.capacity),
  );

  app.post<{ Body: { claim: string; progress: ShardProgress } }>(
    '/api/agent/shards/heartbeat',
    {
      schema: {
        summary: "a worker's heartbeat for a shard it holds, with its progress; `alive: false`: the shard was taken over, stop",
        body: { type: 'object', additionalProperties: false, required: ['claim', 'progress'], properties: { claim: { type: 'string' }, progress: { type: 'object' } } },
      },
    },
    async (request) => ({ alive: await shards.heartbeat(await agentOf(request), request.body.claim, request.body.progress) }),
  );

  app.post<{ Body: { claim: string; outcome: unknown } }>(
    '/api/agent/shards/finish',
    {
      schema: {
        summary: "a worker's result for a shard: its tree and figures, or its error",
        body: { type: 'object', additionalProperties: false, required: ['claim', 'outcome'], properties: { claim: { type: 'string' }, outcome: { type: 'object' } } },
      },
    },
    async (request) => ({ taken: await shards.finish(await agentOf(request), request.body.claim, request.body.outcome) }),
  );

  app.get<{ Params: { id: string } }>('/api/jobs/:id/shards', { schema: { summary: "a scaled-out job's shards: each worker with its shard and progress, and the shards waiting with their sizes" } }, async (request) => {
    const { user } = requireSession(request);
    const job = await ctx.db.selectFrom('jobs').select('id').where('id', '=', request.params.id).where('user_id', '=', user.id).executeTakeFirst();
    if (!job) throw notFound('job');
    return { shards: (await shards.statusOfJob(user.id, job.id)) ?? null };
  });
}
