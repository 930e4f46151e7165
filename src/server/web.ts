// The dashboard's static files (web/dist, built by `npm run build:web` and shipped in the package):
// hashed assets cached for a year, index.html for every page address the browser's router handles, and
// headers that keep the page from being framed or from loading anything from elsewhere.
import fs from 'node:fs';
import path from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';

/** web/dist beside src/ (a checkout) or beside dist/ (the package): both are two levels up from here. */
export const WEB_ROOT = path.resolve(import.meta.dirname, '../../web/dist');

const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  // Charts set style attributes; no remote styles either way.
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
].join('; ');

function pageHeaders(reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', CSP)
    .header('x-frame-options', 'DENY')
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'same-origin')
    .header('cache-control', 'no-cache');
}

const NOT_BUILT = `<!doctype html><meta charset="utf-8"><title>Coffer</title>
<p>The Coffer dashboard is not built in this copy. Run <code>npm run build:web</code> in the checkout (the npm package ships it built). The API answers under <a href="/api/openapi.json">/api/</a>.</p>`;

/** Addresses that are never a dashboard page. */
function isApi(url: string): boolean {
  return url.startsWith('/api/') || url === '/api' || url.startsWith('/healthz') || url.startsWith('/readyz');
}

export async function webRoutes(app: FastifyInstance, options: { root?: string } = {}): Promise<void> {
  const root = options.root ?? WEB_ROOT;
  const indexFile = path.join(root, 'index.html');
  // Assets are looked up when asked for, and index.html read again when it changed: a dashboard
  // rebuilt (or an upgraded package) is served without restarting the server.
  await app.register(fastifyStatic, {
    root: path.join(root, 'assets'),
    prefix: '/assets/',
    index: false,
    cacheControl: false,
    setHeaders: (reply) => {
      reply.header('x-content-type-options', 'nosniff');
      // Vite names assets by their content hash: a changed file gets a new name.
      reply.header('cache-control', 'public, max-age=31536000, immutable');
    },
  });
  let cached: { mtimeMs: number; body: Buffer } | undefined;
  const index = (): Buffer => {
    try {
      const { mtimeMs } = fs.statSync(indexFile);
      if (cached?.mtimeMs !== mtimeMs) cached = { mtimeMs, body: fs.readFileSync(indexFile) };
      return cached.body;
    } catch {
      return Buffer.from(NOT_BUILT);
    }
  };
  app.get('/*', async (request, reply) => {
    if (isApi(request.url)) return reply.code(404).send({ error: `no route GET ${request.url.split('?')[0]}` });
    return pageHeaders(reply).type('text/html; charset=utf-8').send(index());
  });
}
