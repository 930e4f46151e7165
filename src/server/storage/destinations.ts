// Destinations: where backups go. An 's3' destination keeps its credentials on the server (encrypted)
// and agents reach it only through pre-signed URLs; a 'location' destination is a path or sftp:// URL
// that the agent opens itself. Every user's objects live under `users/<user id>/` of the configured
// prefix, so two users naming the same bucket still never see each other's repositories.
import crypto from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { testWrite } from '../../engine/test-write.ts';
import { parseS3Location, s3DisplayLocation } from '../../store/locations.ts';
import { S3Store } from '../../store/s3.ts';
import { raiseAlert, resolveAlerts } from '../alerts/alerts.ts';
import { requireSession } from '../auth/guard.ts';
import type { ServerContext } from '../context.ts';
import { isUniqueViolation } from '../db/errors.ts';
import type { Destination } from '../db/schema.ts';
import { announceLimits } from '../agents/limits.ts';
import { HttpError, notFound } from '../http-error.ts';
import { open, seal } from './secret-box.ts';

interface S3Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly region?: string;
}

export function apiDestination(d: Destination) {
  return {
    id: d.id,
    name: d.name,
    kind: d.kind,
    location: d.location,
    hasCredentials: d.credentials !== null,
    uploadLimit: d.upload_limit,
    downloadLimit: d.download_limit,
    createdAt: d.created_at,
    lastTestAt: d.last_test_at,
    lastTestError: d.last_test_error,
  };
}

/** The user's own root inside an S3 destination. */
export function userRoot(d: Destination): string {
  const parsed = parseS3Location(d.location);
  return `${s3DisplayLocation({ ...parsed, prefix: `${parsed.prefix}users/${d.user_id}/` })}`;
}

/** The server's own store for an S3 destination (stat, list, pre-signing), with its credentials. */
export function openServerStore(ctx: ServerContext, d: Destination): S3Store {
  if (d.kind !== 's3' || !d.credentials) throw new HttpError(400, `destination ${d.name} is not an S3 destination held by the server`);
  const creds = JSON.parse(open(ctx.secret, d.credentials)) as S3Credentials;
  return new S3Store(userRoot(d), { env: { AWS_ACCESS_KEY_ID: creds.accessKeyId, AWS_SECRET_ACCESS_KEY: creds.secretAccessKey, AWS_REGION: creds.region } });
}

export async function destinationOfUser(ctx: ServerContext, userId: string, id: string): Promise<Destination> {
  const d = await ctx.db.selectFrom('destinations').selectAll().where('id', '=', id).where('user_id', '=', userId).executeTakeFirst();
  if (!d) throw notFound('destination');
  return d;
}

const limit = { type: ['integer', 'null'], minimum: 1 } as const;
const destinationBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 100 },
    kind: { enum: ['s3', 'location'] },
    location: { type: 'string', minLength: 1, maxLength: 2000 },
    accessKeyId: { type: 'string', minLength: 1, maxLength: 200 },
    secretAccessKey: { type: 'string', minLength: 1, maxLength: 200 },
    region: { type: 'string', maxLength: 50 },
    uploadLimit: limit,
    downloadLimit: limit,
  },
} as const;

interface DestinationBody {
  name?: string;
  kind?: 's3' | 'location';
  location?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  region?: string;
  uploadLimit?: number | null;
  downloadLimit?: number | null;
}

function checkLocation(kind: 's3' | 'location', location: string): string {
  if (kind === 's3') {
    try {
      return s3DisplayLocation(parseS3Location(location));
    } catch (err) {
      throw new HttpError(400, (err as Error).message);
    }
  }
  if (location.startsWith('s3:')) throw new HttpError(400, 'an s3: location is an S3 destination: use kind "s3" with its credentials, so agents get pre-signed URLs');
  return location;
}

export async function destinationRoutes(app: FastifyInstance, { ctx }: { ctx: ServerContext }): Promise<void> {
  app.get('/api/destinations', { schema: { summary: "the user's destinations (never their credentials)" } }, async (request) => {
    const { user } = requireSession(request);
    return (await ctx.db.selectFrom('destinations').selectAll().where('user_id', '=', user.id).orderBy('name').execute()).map(apiDestination);
  });

  app.get<{ Params: { id: string } }>('/api/destinations/:id', { schema: { summary: 'one destination' } }, async (request) => {
    const { user } = requireSession(request);
    return apiDestination(await destinationOfUser(ctx, user.id, request.params.id));
  });

  app.post<{ Body: DestinationBody }>(
    '/api/destinations',
    { schema: { summary: 'add a destination: s3 (credentials held by the server) or a location the agent opens', body: { ...destinationBody, required: ['name', 'kind', 'location'] } } },
    async (request, reply) => {
      const { user } = requireSession(request);
      const body = request.body;
      const kind = body.kind!;
      const location = checkLocation(kind, body.location!);
      if (kind === 's3' && (!body.accessKeyId || !body.secretAccessKey)) throw new HttpError(400, 'an S3 destination needs accessKeyId and secretAccessKey (the server keeps them; agents never see them)');
      const credentials = kind === 's3' ? seal(ctx.secret, JSON.stringify({ accessKeyId: body.accessKeyId, secretAccessKey: body.secretAccessKey, ...(body.region ? { region: body.region } : {}) })) : null;
      const row: Destination = {
        id: crypto.randomUUID(),
        user_id: user.id,
        name: body.name!.trim(),
        kind,
        location,
        credentials,
        upload_limit: body.uploadLimit ?? null,
        download_limit: body.downloadLimit ?? null,
        created_at: ctx.now(),
        last_test_at: null,
        last_test_error: null,
      };
      try {
        await ctx.db.insertInto('destinations').values(row).execute();
      } catch (err) {
        if (isUniqueViolation(err)) throw new HttpError(409, `a destination named ${row.name} exists`);
        throw err;
      }
      reply.code(201);
      return apiDestination(row);
    },
  );

  app.patch<{ Params: { id: string }; Body: DestinationBody }>(
    '/api/destinations/:id',
    { schema: { summary: 'rename, change limits or credentials (kind and location stay)', body: destinationBody } },
    async (request) => {
      const { user } = requireSession(request);
      const d = await destinationOfUser(ctx, user.id, request.params.id);
      const body = request.body;
      if (body.kind !== undefined && body.kind !== d.kind) throw new HttpError(400, 'the kind of a destination cannot change; add a new destination');
      if (body.location !== undefined && checkLocation(d.kind, body.location) !== d.location) throw new HttpError(400, 'the location of a destination cannot change (its snapshots are there); add a new destination');
      const set: Partial<Destination> = {};
      if (body.name !== undefined) set.name = body.name.trim();
      if (body.uploadLimit !== undefined) set.upload_limit = body.uploadLimit;
      if (body.downloadLimit !== undefined) set.download_limit = body.downloadLimit;
      if (body.accessKeyId !== undefined || body.secretAccessKey !== undefined) {
        if (d.kind !== 's3' || !body.accessKeyId || !body.secretAccessKey) throw new HttpError(400, 'give both accessKeyId and secretAccessKey, for an S3 destination');
        set.credentials = seal(ctx.secret, JSON.stringify({ accessKeyId: body.accessKeyId, secretAccessKey: body.secretAccessKey, ...(body.region ? { region: body.region } : {}) }));
      }
      const updated = await ctx.db.updateTable('destinations').set(set).where('id', '=', d.id).where('user_id', '=', user.id).returningAll().executeTakeFirstOrThrow();
      if (set.upload_limit !== undefined || set.download_limit !== undefined) await announceLimits(ctx, user.id);
      return apiDestination(updated);
    },
  );

  app.delete<{ Params: { id: string } }>('/api/destinations/:id', { schema: { summary: 'forget a destination (its data stays in storage)' } }, async (request) => {
    const { user } = requireSession(request);
    const d = await destinationOfUser(ctx, user.id, request.params.id);
    const usedBy = (await ctx.db.selectFrom('plans').select(['name', 'spec']).where('user_id', '=', user.id).execute()).filter((p) => (JSON.parse(p.spec) as { destinations: string[] }).destinations.includes(d.id));
    if (usedBy.length > 0) throw new HttpError(409, `destination ${d.name} is used by plan ${usedBy.map((p) => p.name).join(', ')}; change those plans first`);
    await ctx.db.deleteFrom('destinations').where('id', '=', d.id).where('user_id', '=', user.id).execute();
    return { ok: true };
  });

  app.post<{ Params: { id: string } }>('/api/destinations/:id/test', { schema: { summary: 'test-write an S3 destination with the server-held credentials' } }, async (request) => {
    const { user } = requireSession(request);
    const d = await destinationOfUser(ctx, user.id, request.params.id);
    return testDestination(ctx, d);
  });
}

/** Writes, reads and deletes a probe; records the outcome and raises or resolves the destination's alert. */
export async function testDestination(ctx: ServerContext, d: Destination): Promise<{ ok: boolean; ms: number; error?: string }> {
  if (d.kind !== 's3') throw new HttpError(400, `destination ${d.name} is opened by the agent; test it there (coffer doctor)`);
  const store = openServerStore(ctx, d);
  try {
    const result = await testWrite(store);
    await ctx.db.updateTable('destinations').set({ last_test_at: ctx.now(), last_test_error: result.error ?? null }).where('id', '=', d.id).execute();
    if (result.ok) await resolveAlerts(ctx, d.user_id, 'destination-failing', d.id);
    else await raiseAlert(ctx, d.user_id, 'destination-failing', d.id, `destination ${d.name} failed its test-write: ${result.error}`);
    return { ok: result.ok, ms: Math.round(result.ms), ...(result.error ? { error: result.error } : {}) };
  } finally {
    await store.close();
  }
}

/**
 * Test-writes every server-held destination not tested for `everyMs`; each is claimed by one server (a
 * conditional update) so several servers do not test the same one at once.
 */
export async function testDueDestinations(ctx: ServerContext, everyMs: number): Promise<void> {
  const now = ctx.now();
  const due = await ctx.db.selectFrom('destinations').select('id').where('kind', '=', 's3').where((eb) => eb.or([eb('last_test_at', 'is', null), eb('last_test_at', '<', now - everyMs)])).execute();
  for (const { id } of due) {
    const claimed = await ctx.db
      .updateTable('destinations')
      .set({ last_test_at: now })
      .where('id', '=', id)
      .where((eb) => eb.or([eb('last_test_at', 'is', null), eb('last_test_at', '<', now - everyMs)]))
      .returningAll()
      .executeTakeFirst();
    if (claimed) await testDestination(ctx, claimed);
  }
}
