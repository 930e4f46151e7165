// /healthz: the process answers. /readyz: it can do its work (database reachable, not shutting down),
// for load balancers and orchestrators.
import { sql } from 'kysely';
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from './context.ts';
import { VERSION } from '../version.ts';

export async function healthRoutes(app: FastifyInstance, { ctx, ready }: { ctx: ServerContext; ready: () => boolean }): Promise<void> {
  app.get('/healthz', { schema: { summary: 'liveness: the process answers' } }, async () => ({ status: 'ok', version: VERSION }));
  app.get('/readyz', { schema: { summary: 'readiness: database reachable and not shutting down' } }, async (_request, reply) => {
    if (!ready()) return reply.code(503).send({ status: 'not ready', reason: 'starting or shutting down' });
    try {
      await sql`select 1`.execute(ctx.db);
    } catch (err) {
      return reply.code(503).send({ status: 'not ready', reason: `database unreachable: ${(err as Error).message}` });
    }
    return { status: 'ready', database: ctx.kind, queue: ctx.queue.name };
  });
}
