// What a write-only agent may do with an S3 destination held by the server: find out what exists (stat,
// list) and get pre-signed URLs to read any object and to add objects that do not exist yet. There is
// no route to delete, and a PUT URL is only handed out for a name that is not taken, so an agent (or
// ransomware on its machine) can add to history but never remove or replace it. Names are checked
// against the repository layout before anything is signed.
import type { FastifyInstance } from 'fastify';
import { checkFolder, checkObjectName } from '../../store/layout.ts';
import { StoreError } from '../../store/store.ts';
import { requireKey } from '../auth/guard.ts';
import type { ServerContext } from '../context.ts';
import { HttpError } from '../http-error.ts';
import { destinationOfUser, openServerStore } from './destinations.ts';

/** Long enough for a slow upload of one pack to start, short enough to be useless if it leaks. */
export const URL_LIFETIME_SECONDS = 15 * 60;
const LIST_PAGE = 5000;

function checked<T>(check: () => T): T {
  try {
    return check();
  } catch (err) {
    throw new HttpError(400, (err as Error).message);
  }
}

function storeFailure(err: unknown): never {
  if (err instanceof StoreError) throw new HttpError(err.kind === 'denied' ? 502 : err.kind === 'not-found' ? 404 : 502, `storage: ${err.message}`);
  throw err;
}

export async function storageRoutes(app: FastifyInstance, { ctx }: { ctx: ServerContext }): Promise<void> {
  const storeFor = async (userId: string, destinationId: string) => openServerStore(ctx, await destinationOfUser(ctx, userId, destinationId));

  app.post<{ Params: { id: string }; Body: { name: string; size: number } }>(
    '/api/agent/storage/:id/put',
    {
      schema: {
        summary: 'a pre-signed PUT for a new object, or {exists, size} when the name is taken (never an overwrite)',
        body: { type: 'object', required: ['name', 'size'], additionalProperties: false, properties: { name: { type: 'string', maxLength: 300 }, size: { type: 'integer', minimum: 0 } } },
      },
    },
    async (request) => {
      const { user } = requireKey(request);
      const { name, size } = request.body;
      checked(() => checkObjectName(name, 'pre-signing an upload'));
      const store = await storeFor(user.id, request.params.id);
      try {
        const existing = await store.stat(name).catch(storeFailure);
        if (existing) return { exists: true, size: existing.size };
        return { exists: false, ...(await store.presign('PUT', name, URL_LIFETIME_SECONDS)), size };
      } finally {
        await store.close();
      }
    },
  );

  app.post<{ Params: { id: string }; Body: { name: string } }>(
    '/api/agent/storage/:id/get',
    { schema: { summary: 'a pre-signed GET for an object', body: { type: 'object', required: ['name'], additionalProperties: false, properties: { name: { type: 'string', maxLength: 300 } } } } },
    async (request) => {
      const { user } = requireKey(request);
      checked(() => checkObjectName(request.body.name, 'pre-signing a download'));
      const store = await storeFor(user.id, request.params.id);
      try {
        return await store.presign('GET', request.body.name, URL_LIFETIME_SECONDS);
      } finally {
        await store.close();
      }
    },
  );

  app.post<{ Params: { id: string }; Body: { name: string } }>(
    '/api/agent/storage/:id/stat',
    { schema: { summary: "an object's size, or {exists: false}", body: { type: 'object', required: ['name'], additionalProperties: false, properties: { name: { type: 'string', maxLength: 300 } } } } },
    async (request) => {
      const { user } = requireKey(request);
      checked(() => checkObjectName(request.body.name, 'checking an object'));
      const store = await storeFor(user.id, request.params.id);
      try {
        const info = await store.stat(request.body.name).catch(storeFailure);
        return info ? { exists: true, size: info.size } : { exists: false };
      } finally {
        await store.close();
      }
    },
  );

  app.get<{ Params: { id: string }; Querystring: { dir: string; after?: string } }>(
    '/api/agent/storage/:id/list',
    {
      schema: {
        summary: 'the objects of a folder, by pages of names after `after`',
        querystring: { type: 'object', required: ['dir'], properties: { dir: { type: 'string', maxLength: 50 }, after: { type: 'string', maxLength: 300 } } },
      },
    },
    async (request) => {
      const { user } = requireKey(request);
      checked(() => checkFolder(request.query.dir, 'listing'));
      const store = await storeFor(user.id, request.params.id);
      try {
        // The folder is listed whole and cut into pages sorted by name: listings are what the engine
        // asks for once per run, and this keeps the agent's paging independent of the storage's.
        const all: { name: string; size: number }[] = [];
        for await (const o of store.list(request.query.dir)) all.push({ name: o.name, size: o.size });
        all.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
        const after = request.query.after;
        const start = after === undefined ? 0 : all.findIndex((o) => o.name > after);
        const page = start < 0 ? [] : all.slice(start, start + LIST_PAGE);
        const next = start >= 0 && start + LIST_PAGE < all.length ? page[page.length - 1]!.name : undefined;
        return { objects: page, ...(next ? { next } : {}) };
      } catch (err) {
        return storeFailure(err);
      } finally {
        await store.close();
      }
    },
  );
}
