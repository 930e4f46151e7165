// The global pause of one user's fleet: running jobs are paused on their agents, and no job of the user
// is handed to an agent until the pause is lifted (schedules and retries still queue theirs, which then
// wait). Lifting it resumes the jobs it paused and wakes the agents. The state is a row of `settings`,
// so every server process sees it.
import type { FastifyInstance } from 'fastify';
import { requireSession } from '../auth/guard.ts';
import type { ServerContext } from '../context.ts';
import { controlJob } from '../jobs/lifecycle.ts';
import { pauseKey, pauseRecord, type PauseRecord } from '../jobs/pause-state.ts';

export async function pauseAll(ctx: ServerContext, userId: string): Promise<PauseRecord> {
  const existing = await pauseRecord(ctx, userId);
  if (existing) return existing;
  const running = await ctx.db.selectFrom('jobs').select('id').where('user_id', '=', userId).where('status', '=', 'running').execute();
  const paused: PauseRecord = { at: ctx.now(), jobs: running.map((j) => j.id) };
  // Written before the jobs are told, so nothing is handed out in between.
  await ctx.db.insertInto('settings').values({ key: pauseKey(userId), value: JSON.stringify(paused) }).onConflict((oc) => oc.column('key').doNothing()).execute();
  for (const { id } of running) await controlJob(ctx, userId, id, 'pause').catch(() => {});
  return paused;
}

export async function resumeAll(ctx: ServerContext, userId: string): Promise<void> {
  const paused = await pauseRecord(ctx, userId);
  if (!paused) return;
  await ctx.db.deleteFrom('settings').where('key', '=', pauseKey(userId)).execute();
  const still = paused.jobs.length ? await ctx.db.selectFrom('jobs').select('id').where('id', 'in', paused.jobs).where('user_id', '=', userId).where('status', '=', 'paused').execute() : [];
  for (const { id } of still) await controlJob(ctx, userId, id, 'resume').catch(() => {});
  // Jobs that waited meanwhile: their agents claim them now.
  const agents = await ctx.db.selectFrom('agents').select('id').where('user_id', '=', userId).execute();
  await ctx.events.append(agents.map((a) => ({ agentId: a.id, type: 'agent.dispatch', data: {} })));
}

function view(r: PauseRecord | undefined) {
  return { paused: r !== undefined, pausedAt: r?.at ?? null };
}

export async function pauseRoutes(app: FastifyInstance, { ctx }: { ctx: ServerContext }): Promise<void> {
  app.get('/api/dashboard/pause', { schema: { summary: 'whether everything is paused (the global pause)' } }, async (request) => {
    const { user } = requireSession(request);
    return view(await pauseRecord(ctx, user.id));
  });

  app.put<{ Body: { paused: boolean } }>(
    '/api/dashboard/pause',
    {
      schema: {
        summary: 'pause everything (running jobs pause, no job starts) or lift the pause (the jobs it paused resume, waiting ones start)',
        body: { type: 'object', required: ['paused'], additionalProperties: false, properties: { paused: { type: 'boolean' } } },
      },
    },
    async (request) => {
      const { user } = requireSession(request);
      if (request.body.paused) await pauseAll(ctx, user.id);
      else await resumeAll(ctx, user.id);
      return view(await pauseRecord(ctx, user.id));
    },
  );
}
