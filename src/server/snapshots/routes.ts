// Snapshots for the dashboard, read through an agent of the user (the one chosen, which must be online):
// the list of a destination (with the plan each snapshot came from, from the job history), one
// directory per request, a diff, a tar of chosen paths streamed from the agent through this server, and
// a test-write of a destination the agent opens itself.
//
// A tar download takes two steps, so that the browser downloads it with a plain GET (straight to disk,
// however large): POST .../download records what to send under a random single-use token and answers
// its address; GET /api/downloads/:id asks the agent, which PUTs the tar to /api/agent/uploads/:id
// on this server, piped on to the browser as it arrives. With several servers, the agent's upload and
// the browser's download must reach the same one (as with sticky sessions).
import crypto from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { DestinationRef } from '../../agent/protocol.ts';
import type { AgentHub } from '../agents/hub.ts';
import { agentOfUser } from '../agents/agents.ts';
import { requireKey, requireSession } from '../auth/guard.ts';
import type { ServerContext } from '../context.ts';
import type { Agent } from '../db/schema.ts';
import { HttpError, notFound } from '../http-error.ts';
import { destinationRef } from '../plans/plans.ts';
import { destinationOfUser } from '../storage/destinations.ts';
import { MAX_FILTER } from '../../engine/snapshot-browse.ts';
import { AgentQueries } from './agent-queries.ts';

const LIST_TIMEOUT_MS = 60_000;
const DIFF_TIMEOUT_MS = 4 * 60_000;
/** How long the agent may take to start sending a tar. */
const UPLOAD_START_MS = 60_000;
/** How long a tar may take in all. */
const TAR_TIMEOUT_MS = 12 * 3600_000;
const DOWNLOAD_TOKEN_MS = 5 * 60_000;
const PAGE = 1000;
const MAX_PATHS = 1000;

/** Checked by the agent (an id, a unique prefix of one, or latest), after the destination and agent are found to be the caller's. */
const snapshotId = { type: 'string', minLength: 1, maxLength: 100 } as const;
const repoQuery = { destination: { type: 'string', maxLength: 100 }, agent: { type: 'string', maxLength: 100 } } as const;
const absolutePath = { type: 'string', minLength: 1, maxLength: 4096, pattern: '^/' } as const;

interface RepoParams {
  destination: string;
  agent: string;
}

interface DownloadRequest {
  readonly userId: string;
  readonly agent: Agent;
  readonly destinations: readonly DestinationRef[];
  readonly snapshot: string;
  readonly paths: readonly string[];
  readonly expires: number;
}

interface Transfer {
  readonly agentId: string;
  /** Called with the agent's upload; resolves once it has been passed on. */
  readonly accept: (body: IncomingMessage) => Promise<void>;
}

export interface SnapshotInfo {
  readonly id: string;
  readonly time: string;
  readonly host: string;
  readonly paths: string[];
  readonly tags: string[];
  readonly totalFiles: number;
  readonly totalBytes: number;
  readonly bytesAdded: number;
}

function downloadName(snapshot: string, paths: readonly string[]): string {
  const base = paths.length === 1 ? (paths[0]!.split('/').filter(Boolean).pop() ?? 'snapshot') : `${paths.length}-items`;
  // Header-safe: letters, digits and a few marks; anything else becomes '_'.
  return `coffer-${snapshot.slice(0, 8)}-${base.replace(/[^\w.-]/g, '_').slice(0, 80)}.tar`;
}

export async function snapshotRoutes(app: FastifyInstance, { ctx, hub }: { ctx: ServerContext; hub: AgentHub }): Promise<void> {
  const queries = new AgentQueries(ctx, hub);
  app.addHook('onClose', async () => queries.stop());
  const downloads = new Map<string, DownloadRequest>();
  const transfers = new Map<string, Transfer>();

  /** The user's destination and agent, 404 for anyone else's. */
  const repoOf = async (userId: string, q: RepoParams): Promise<{ agent: Agent; destinations: DestinationRef[] }> => {
    const destination = await destinationOfUser(ctx, userId, q.destination);
    const agent = await agentOfUser(ctx, userId, q.agent).catch(() => {
      throw notFound('agent');
    });
    return { agent, destinations: [destinationRef(destination)] };
  };

  app.get<{ Querystring: RepoParams }>(
    '/api/snapshots',
    {
      schema: {
        summary: "a destination's snapshots, newest first, read by the agent given (it holds the passphrase); each with the plan that made it",
        querystring: { type: 'object', required: ['destination', 'agent'], additionalProperties: false, properties: repoQuery },
      },
    },
    async (request) => {
      const { user } = requireSession(request);
      const { agent, destinations } = await repoOf(user.id, request.query);
      const snapshots = (await queries.ask(agent, destinations, { op: 'snapshots' }, LIST_TIMEOUT_MS)) as SnapshotInfo[];
      const ids = snapshots.map((s) => s.id);
      const jobs = ids.length ? await ctx.db.selectFrom('jobs').select(['id', 'plan_id', 'snapshot_id', 'params']).where('user_id', '=', user.id).where('kind', '=', 'backup').where('snapshot_id', 'in', ids).execute() : [];
      const plans = new Map((await ctx.db.selectFrom('plans').select(['id', 'name']).where('user_id', '=', user.id).execute()).map((p) => [p.id, p.name]));
      const bySnapshot = new Map(jobs.map((j) => [j.snapshot_id!, j]));
      return {
        agentId: agent.id,
        destinationId: request.query.destination,
        snapshots: snapshots.map((s) => {
          const job = bySnapshot.get(s.id);
          const planName = job ? ((job.plan_id && plans.get(job.plan_id)) ?? (JSON.parse(job.params) as { planName?: string }).planName ?? null) : null;
          return { ...s, planId: job?.plan_id ?? null, planName, jobId: job?.id ?? null };
        }),
      };
    },
  );

  app.get<{ Params: { id: string }; Querystring: RepoParams & { path?: string; after?: string; limit?: number; filter?: string } }>(
    '/api/snapshots/:id/tree',
    {
      schema: {
        summary: 'one directory of a snapshot (a page of its entries: name, type, size, mtime); `next` continues with `after`; `filter` keeps the names holding it (any case)',
        params: { type: 'object', properties: { id: snapshotId } },
        querystring: {
          type: 'object',
          required: ['destination', 'agent'],
          additionalProperties: false,
          properties: { ...repoQuery, path: absolutePath, after: { type: 'string', maxLength: 4096 }, limit: { type: 'integer', minimum: 1, maximum: PAGE }, filter: { type: 'string', maxLength: MAX_FILTER } },
        },
      },
    },
    async (request) => {
      const { user } = requireSession(request);
      const { agent, destinations } = await repoOf(user.id, request.query);
      const q = request.query;
      const filter = q.filter ? { filter: q.filter } : {};
      const page = (await queries.ask(agent, destinations, { op: 'tree', snapshot: request.params.id, path: q.path ?? '/', ...(q.after !== undefined ? { after: q.after } : {}), ...filter, limit: q.limit ?? PAGE }, LIST_TIMEOUT_MS)) as { filter?: string };
      // An agent older than this server lists the whole folder: better an error than a filter that seems to find everything.
      if (q.filter && page.filter !== q.filter) throw new HttpError(502, `agent ${agent.hostname} cannot filter a folder's entries; update it to the server's version`);
      return page;
    },
  );

  app.get<{ Params: { id: string }; Querystring: RepoParams & { to: string } }>(
    '/api/snapshots/:id/diff',
    {
      schema: {
        summary: 'what changed from snapshot :id to snapshot `to`: counts per kind and the first changes',
        params: { type: 'object', properties: { id: snapshotId } },
        querystring: { type: 'object', required: ['destination', 'agent', 'to'], additionalProperties: false, properties: { ...repoQuery, to: snapshotId } },
      },
    },
    async (request) => {
      const { user } = requireSession(request);
      const { agent, destinations } = await repoOf(user.id, request.query);
      return queries.ask(agent, destinations, { op: 'diff', snapshot: request.params.id, to: request.query.to, limit: 2000 }, DIFF_TIMEOUT_MS);
    },
  );

  app.post<{ Params: { id: string }; Body: RepoParams & { paths: string[] } }>(
    '/api/snapshots/:id/download',
    {
      schema: {
        summary: 'prepare a tar of some paths of a snapshot: answers the address to download it from (single use, 5 minutes)',
        params: { type: 'object', properties: { id: snapshotId } },
        body: { type: 'object', required: ['destination', 'agent', 'paths'], additionalProperties: false, properties: { ...repoQuery, paths: { type: 'array', minItems: 1, maxItems: MAX_PATHS, items: absolutePath } } },
      },
    },
    async (request) => {
      const { user } = requireSession(request);
      const { agent, destinations } = await repoOf(user.id, request.body);
      if (agent.status !== 'online') throw new HttpError(409, `agent ${agent.hostname} is offline; choose an online agent to read the snapshot`);
      const now = ctx.now();
      for (const [t, d] of downloads) if (d.expires <= now) downloads.delete(t);
      const token = crypto.randomBytes(24).toString('base64url');
      downloads.set(token, { userId: user.id, agent, destinations, snapshot: request.params.id, paths: request.body.paths, expires: now + DOWNLOAD_TOKEN_MS });
      return { url: `/api/downloads/${token}` };
    },
  );

  app.get<{ Params: { id: string } }>('/api/downloads/:id', { schema: { summary: 'the tar prepared by POST /api/snapshots/:id/download, streamed from the agent' } }, async (request, reply) => {
    const { user } = requireSession(request);
    const wanted = downloads.get(request.params.id);
    if (!wanted || wanted.userId !== user.id || wanted.expires <= ctx.now()) throw new HttpError(404, 'this download link is unknown, used or expired; choose the files again');
    downloads.delete(request.params.id);
    const id = crypto.randomUUID();
    let started: (() => void) | undefined;
    const arrived = new Promise<void>((resolve) => (started = resolve));
    let finished: Promise<void> | undefined;
    transfers.set(id, {
      agentId: wanted.agent.id,
      accept: (body) => {
        finished = stream(reply, body, downloadName(wanted.snapshot, wanted.paths));
        started!();
        return finished;
      },
    });
    const answer = queries.ask(wanted.agent, wanted.destinations, { op: 'tar', snapshot: wanted.snapshot, paths: wanted.paths, upload: `/api/agent/uploads/${id}` }, TAR_TIMEOUT_MS);
    answer.catch(() => {});
    let timer: NodeJS.Timeout | undefined;
    try {
      // Until the agent starts sending, a failure is still an answer the browser can show.
      await Promise.race([
        arrived,
        answer.then(() => {
          throw new HttpError(502, 'the agent finished without sending the tar');
        }),
        new Promise((_, reject) => (timer = setTimeout(() => reject(new HttpError(504, `agent ${wanted.agent.hostname} did not start sending within ${UPLOAD_START_MS / 1000} s`)), UPLOAD_START_MS))),
      ]);
    } catch (err) {
      transfers.delete(id);
      throw err;
    } finally {
      clearTimeout(timer);
    }
    transfers.delete(id);
    await finished;
    return reply;
  });

  app.addContentTypeParser('application/x-tar', (_request, _payload, done) => done(null, undefined));
  app.put<{ Params: { id: string } }>('/api/agent/uploads/:id', { schema: { summary: 'an agent streams a tar the dashboard asked for (application/x-tar)' } }, async (request) => {
    const auth = requireKey(request);
    const transfer = transfers.get(request.params.id);
    const agentId = request.headers['x-coffer-agent'];
    if (!transfer || agentId !== transfer.agentId) throw new HttpError(404, 'no download is waiting for this upload here (it was cancelled, or asked of another server)');
    const agent = await agentOfUser(ctx, auth.user.id, agentId).catch(() => undefined);
    if (!agent) throw new HttpError(404, 'no download is waiting for this upload here');
    transfers.delete(request.params.id);
    await transfer.accept(request.raw);
    return { ok: true };
  });

  app.post<{ Params: { id: string }; Body: { destinationId: string } }>(
    '/api/agents/:id/test-destination',
    {
      schema: {
        summary: 'the agent writes, reads back and deletes a probe in a destination it opens itself (a path or sftp://)',
        body: { type: 'object', required: ['destinationId'], additionalProperties: false, properties: { destinationId: { type: 'string', maxLength: 100 } } },
      },
    },
    async (request) => {
      const { user } = requireSession(request);
      const { agent, destinations } = await repoOf(user.id, { agent: request.params.id, destination: request.body.destinationId });
      return queries.ask(agent, destinations, { op: 'test-write' }, LIST_TIMEOUT_MS);
    },
  );
}

/** Passes the agent's tar on to the browser; a browser that goes away stops the agent's upload. */
async function stream(reply: FastifyReply, body: IncomingMessage, filename: string): Promise<void> {
  reply.hijack();
  const raw = reply.raw;
  raw.writeHead(200, { 'content-type': 'application/x-tar', 'content-disposition': `attachment; filename="${filename}"`, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  try {
    await pipeline(body, raw);
  } catch {
    // One side went away: the other is closed by pipeline; the agent sees its upload fail and stops.
    body.destroy();
    raw.destroy();
  }
}
