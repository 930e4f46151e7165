// Live events for the dashboard over Server-Sent Events: job progress and state, logs, agent status,
// alerts. Every event carries its id; a dashboard that reconnects (EventSource sends Last-Event-ID by
// itself) first gets what it missed, then live events. If what it missed is no longer kept, it gets a
// 'reset' event and should reload its state.
import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { requireSession } from '../auth/guard.ts';
import type { ServerContext } from '../context.ts';
import type { ServerEvent } from './event-log.ts';

const KEEPALIVE_MS = 15_000;
/** Event types a dashboard sees; the rest are for servers and agents. */
export const DASHBOARD_EVENTS = new Set(['job.updated', 'job.progress', 'job.shards', 'job.log', 'agent.updated', 'alert.raised', 'alert.resolved', 'alert.acknowledged']);

function frame(e: ServerEvent): string {
  return `id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify({ ...(e.data as object), at: e.at })}\n\n`;
}

export async function eventRoutes(app: FastifyInstance, { ctx }: { ctx: ServerContext }): Promise<void> {
  // Streams never end by themselves: a shutting-down server ends them, or it would wait for them forever.
  const open = new Set<ServerResponse>();
  app.addHook('preClose', async () => {
    for (const raw of open) raw.end();
  });
  app.get<{ Querystring: { after?: number } }>(
    '/api/events',
    {
      schema: {
        summary: 'Server-Sent Events: job.updated, job.progress, job.shards, job.log, agent.updated, alert.*; resumes after Last-Event-ID (or ?after=)',
        querystring: { type: 'object', additionalProperties: false, properties: { after: { type: 'integer', minimum: 0 } } },
      },
    },
    async (request, reply) => {
      const { user } = requireSession(request);
      const header = request.headers['last-event-id'];
      const resumeFrom = typeof header === 'string' && /^\d+$/.test(header) ? Number(header) : request.query.after;
      reply.hijack();
      const raw = reply.raw;
      raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
      raw.write(`retry: 2000\n: connected\n\n`);
      let sent = resumeFrom ?? ctx.events.cursor;
      let replaying = true;
      const buffered: ServerEvent[] = [];
      const send = (e: ServerEvent): void => {
        if (e.id <= sent || e.userId !== user.id || !DASHBOARD_EVENTS.has(e.type) || raw.writableEnded) return;
        sent = e.id;
        raw.write(frame(e));
      };
      const unsubscribe = ctx.events.subscribe((e) => (replaying ? buffered.push(e) : send(e)));
      const keepalive = setInterval(() => raw.writableEnded || raw.write(': keepalive\n\n'), KEEPALIVE_MS);
      open.add(raw);
      request.raw.on('close', () => {
        open.delete(raw);
        unsubscribe();
        clearInterval(keepalive);
      });
      if (resumeFrom !== undefined) {
        const missed = await ctx.events.since(resumeFrom, { userId: user.id });
        if (!missed.complete) raw.write(`event: reset\ndata: {}\n\n`);
        for (const e of missed.events) send(e);
      }
      replaying = false;
      for (const e of buffered.splice(0)) send(e);
    },
  );
}
