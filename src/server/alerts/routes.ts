// Alerts as a person sees them: open or all, and acknowledging one (who and when).
import type { FastifyInstance } from 'fastify';
import { requireSession } from '../auth/guard.ts';
import type { ServerContext } from '../context.ts';
import { notFound } from '../http-error.ts';
import { apiAlert } from './alerts.ts';

export async function alertRoutes(app: FastifyInstance, { ctx }: { ctx: ServerContext }): Promise<void> {
  app.get<{ Querystring: { state?: 'open' | 'all'; limit?: number } }>(
    '/api/alerts',
    {
      schema: {
        summary: 'alerts, newest first: open ones (default) or all',
        querystring: { type: 'object', additionalProperties: false, properties: { state: { enum: ['open', 'all'] }, limit: { type: 'integer', minimum: 1, maximum: 1000 } } },
      },
    },
    async (request) => {
      const { user } = requireSession(request);
      let query = ctx.db.selectFrom('alerts').selectAll().where('user_id', '=', user.id);
      if ((request.query.state ?? 'open') === 'open') query = query.where('resolved_at', 'is', null);
      return (await query.orderBy('created_at', 'desc').limit(request.query.limit ?? 200).execute()).map(apiAlert);
    },
  );

  app.post<{ Params: { id: string } }>('/api/alerts/:id/acknowledge', { schema: { summary: 'acknowledge an alert (records who and when)' } }, async (request) => {
    const { user } = requireSession(request);
    const alert = await ctx.db.selectFrom('alerts').selectAll().where('id', '=', request.params.id).where('user_id', '=', user.id).executeTakeFirst();
    if (!alert) throw notFound('alert');
    if (alert.acknowledged_at !== null) return apiAlert(alert);
    const updated = await ctx.db
      .updateTable('alerts')
      .set({ acknowledged_by: user.email, acknowledged_at: ctx.now() })
      .where('id', '=', alert.id)
      .where('user_id', '=', user.id)
      .returningAll()
      .executeTakeFirstOrThrow();
    await ctx.events.append({ userId: user.id, type: 'alert.acknowledged', data: apiAlert(updated) });
    return apiAlert(updated);
  });
}
