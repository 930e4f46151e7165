// API keys, which agents use. A key is shown once when created and stored only as a hash; revoking one
// stops it at once: every request looks the key up, and an open agent connection is closed (the
// 'key.revoked' event reaches the server process that holds it).
import crypto from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../context.ts';
import { notFound } from '../http-error.ts';
import { requireSession } from './guard.ts';
import { API_KEY_PREFIX, newToken, tokenHash } from './tokens.ts';

export async function keyRoutes(app: FastifyInstance, { ctx }: { ctx: ServerContext }): Promise<void> {
  app.get('/api/keys', { schema: { summary: "the user's API keys (never the keys themselves)" } }, async (request) => {
    const { user } = requireSession(request);
    const rows = await ctx.db.selectFrom('api_keys').selectAll().where('user_id', '=', user.id).orderBy('created_at').execute();
    return rows.map((r) => ({ id: r.id, name: r.name, prefix: r.prefix, createdAt: r.created_at, lastUsedAt: r.last_used_at, revokedAt: r.revoked_at }));
  });

  app.post<{ Body: { name: string } }>(
    '/api/keys',
    {
      schema: {
        summary: 'create an API key for an agent; the key is in this answer only',
        body: { type: 'object', required: ['name'], additionalProperties: false, properties: { name: { type: 'string', minLength: 1, maxLength: 100 } } },
      },
    },
    async (request, reply) => {
      const { user } = requireSession(request);
      const key = newToken(API_KEY_PREFIX);
      const id = crypto.randomUUID();
      const now = ctx.now();
      await ctx.db.insertInto('api_keys').values({ id, user_id: user.id, name: request.body.name.trim(), prefix: key.slice(0, API_KEY_PREFIX.length + 6), key_hash: tokenHash(key), created_at: now, last_used_at: null, revoked_at: null }).execute();
      reply.code(201);
      return { id, name: request.body.name.trim(), key, createdAt: now };
    },
  );

  app.delete<{ Params: { id: string } }>('/api/keys/:id', { schema: { summary: 'revoke an API key: it stops working at once' } }, async (request) => {
    const { user } = requireSession(request);
    const now = ctx.now();
    const r = await ctx.db.updateTable('api_keys').set({ revoked_at: now }).where('id', '=', request.params.id).where('user_id', '=', user.id).where('revoked_at', 'is', null).executeTakeFirst();
    if (Number(r.numUpdatedRows) === 0) {
      const exists = await ctx.db.selectFrom('api_keys').select('id').where('id', '=', request.params.id).where('user_id', '=', user.id).executeTakeFirst();
      if (!exists) throw notFound('API key');
      return { ok: true };
    }
    await ctx.events.append({ type: 'key.revoked', userId: null, data: { keyId: request.params.id } });
    return { ok: true };
  });
}
