// The Fastify application: every feature is a plugin registered here with the shared context, so a
// test builds the same app and talks to it with inject() without opening a port.
import crypto from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import websocket from '@fastify/websocket';
import { keyRoutes } from './auth/keys.ts';
import { registerAuth } from './auth/guard.ts';
import { authRoutes } from './auth/routes.ts';
import type { ServerContext } from './context.ts';
import { healthRoutes } from './health.ts';
import { HttpError } from './http-error.ts';
import { registerOpenApi } from './openapi.ts';

export interface AppOptions {
  readonly https?: { cert: Buffer; key: Buffer };
  /** Extra routes and hooks registered after the features (the agent hub, say). */
  readonly plugins?: readonly ((app: FastifyInstance) => Promise<void>)[];
  /** Answers /readyz: false while starting or shutting down. */
  readonly ready?: () => boolean;
}

export async function buildApp(ctx: ServerContext, options: AppOptions = {}): Promise<FastifyInstance> {
  const serverOptions: FastifyServerOptions = {
    loggerInstance: ctx.log,
    trustProxy: ctx.settings.trustProxy,
    bodyLimit: 4 * 1024 * 1024,
    // Request ids in every log line of a request, to follow one through the log.
    genReqId: () => crypto.randomUUID(),
  };
  const app = (options.https ? Fastify({ ...serverOptions, https: options.https } as FastifyServerOptions) : Fastify(serverOptions)) as unknown as FastifyInstance;
  app.setErrorHandler((err: Error & { statusCode?: number; validation?: unknown; code?: string }, request, reply) => {
    if (err instanceof HttpError) {
      reply.headers(err.headers).code(err.status).send({ error: err.message });
      return;
    }
    if (err.validation) {
      reply.code(400).send({ error: `invalid request: ${err.message}` });
      return;
    }
    if (err.statusCode && err.statusCode < 500) {
      reply.code(err.statusCode).send({ error: err.message });
      return;
    }
    request.log.error({ err }, 'request failed');
    reply.code(500).send({ error: 'the server failed to handle this request; its log has the details' });
  });
  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send({ error: `no route ${request.method} ${request.url.split('?')[0]}` });
  });
  registerOpenApi(app);
  registerAuth(app, ctx);
  await app.register(websocket, { options: { maxPayload: 4 * 1024 * 1024 } });
  await app.register(healthRoutes, { ctx, ready: options.ready ?? (() => true) });
  await app.register(authRoutes, { ctx });
  await app.register(keyRoutes, { ctx });
  for (const plugin of options.plugins ?? []) await plugin(app);
  return app;
}
