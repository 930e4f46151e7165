// The OpenAPI description, built from the routes themselves: each route's JSON schemas (body, query,
// params) and its summary, collected as routes are registered. Nothing to keep in sync by hand.
import type { FastifyInstance, RouteOptions } from 'fastify';
import { VERSION } from '../version.ts';

declare module 'fastify' {
  interface FastifySchema {
    summary?: string;
  }
}

interface Operation {
  summary?: string;
  parameters?: unknown[];
  requestBody?: unknown;
  responses: Record<string, unknown>;
}

/** Starts collecting routes; call before registering them. Serves GET /api/openapi.json. */
export function registerOpenApi(app: FastifyInstance): void {
  const paths: Record<string, Record<string, Operation>> = {};
  app.addHook('onRoute', (route: RouteOptions) => {
    if (!route.url.startsWith('/api/') && !route.url.startsWith('/healthz') && !route.url.startsWith('/readyz')) return;
    const url = route.url.replace(/:(\w+)/g, '{$1}');
    const methods = (Array.isArray(route.method) ? route.method : [route.method]).filter((m) => m !== 'HEAD');
    const schema = route.schema ?? {};
    const parameters: unknown[] = [];
    for (const name of route.url.match(/:(\w+)/g) ?? []) parameters.push({ name: name.slice(1), in: 'path', required: true, schema: { type: 'string' } });
    const query = schema.querystring as { properties?: Record<string, unknown>; required?: string[] } | undefined;
    for (const [name, s] of Object.entries(query?.properties ?? {})) parameters.push({ name, in: 'query', required: query?.required?.includes(name) ?? false, schema: s });
    for (const method of methods) {
      (paths[url] ??= {})[method.toLowerCase()] = {
        ...(schema.summary ? { summary: schema.summary } : {}),
        ...(parameters.length ? { parameters } : {}),
        ...(schema.body ? { requestBody: { required: true, content: { 'application/json': { schema: schema.body } } } } : {}),
        responses: { default: { description: 'JSON; errors are {"error": "…"} with a 4xx/5xx status' } },
      };
    }
  });
  app.get('/api/openapi.json', { schema: { summary: 'this description' } }, async () => ({
    openapi: '3.1.0',
    info: { title: 'Coffer server', version: VERSION },
    components: {
      securitySchemes: {
        session: { type: 'apiKey', in: 'cookie', name: 'coffer_session', description: 'writes also need the X-CSRF-Token header' },
        agentKey: { type: 'http', scheme: 'bearer', description: 'an API key (cof_…) for /api/agent routes' },
      },
    },
    paths,
  }));
}
