// The routes the web dashboard needs beyond the fleet's own: the overview and its series, the global
// pause, and reading snapshots through an agent. Registered with the fleet, so every server (and the
// isolation test's walk over the OpenAPI description) has them.
import type { FastifyInstance } from 'fastify';
import type { AgentHub } from '../agents/hub.ts';
import type { ServerContext } from '../context.ts';
import { overviewRoutes } from './overview.ts';
import { pauseRoutes } from './pause.ts';
import { snapshotRoutes } from '../snapshots/routes.ts';

export async function dashboardRoutes(app: FastifyInstance, { ctx, hub }: { ctx: ServerContext; hub: AgentHub }): Promise<void> {
  await app.register(overviewRoutes, { ctx });
  await app.register(pauseRoutes, { ctx });
  await app.register(snapshotRoutes, { ctx, hub });
}
