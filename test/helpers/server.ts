// A server for tests: the same context and app as `coffer server`, on SQLite in a temporary directory
// or on a PostgreSQL database, talked to with inject() (no port) unless a test listens.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import pino, { type Logger } from 'pino';
import { buildApp, type AppOptions } from '../../src/server/app.ts';
import { loadServerSettings } from '../../src/server/config.ts';
import type { ServerContext } from '../../src/server/context.ts';
import { openServerCore } from '../../src/server/core.ts';
import { Fleet } from '../../src/server/fleet.ts';
import { until, type AgentProcess } from './agent.ts';
import { startS3Server, type S3Server } from './s3-server.ts';

export interface TestServer {
  readonly app: FastifyInstance;
  readonly ctx: ServerContext;
  readonly fleet: Fleet;
  readonly dataDir: string;
  /** http://127.0.0.1:port once `listen` was asked for. */
  readonly url: string;
  close(): Promise<void>;
}

/** Retries after a few seconds, so tests see a retry without waiting minutes. */
export const QUICK_RETRIES = { maxRetries: 2, delaysMs: { other: [300, 300], network: [300, 300] } };

export async function startTestServer(options: { databaseUrl?: string; dataDir?: string; settings?: Record<string, unknown>; app?: AppOptions; listen?: boolean; monitorIntervalMs?: number; log?: Logger } = {}): Promise<TestServer> {
  const dataDir = options.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-server-'));
  const settings = loadServerSettings({ env: {}, flags: { dataDir, ...(options.databaseUrl ? { databaseUrl: options.databaseUrl } : {}), ...options.settings } });
  const core = await openServerCore(settings, options.log ?? pino({ level: process.env.COFFER_TEST_LOG ?? 'silent' }), { eventPollMs: 50 });
  const fleet = new Fleet(core.ctx, { retryPolicy: QUICK_RETRIES, monitorIntervalMs: options.monitorIntervalMs ?? 500 });
  const app = await buildApp(core.ctx, { ...options.app, plugins: [fleet.plugin, ...(options.app?.plugins ?? [])] });
  await fleet.start();
  const url = options.listen ? await app.listen({ host: '127.0.0.1', port: 0 }) : '';
  if (!options.listen) await app.ready();
  return {
    app,
    ctx: core.ctx,
    fleet,
    dataDir,
    url,
    async close() {
      await fleet.stop();
      await app.close();
      await core.close();
      if (!options.dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A signed-in person as the API sees one: the cookie and the CSRF token, sent with every request. */
export class Client {
  readonly app: FastifyInstance;
  cookie = '';
  csrf = '';
  userId = '';

  constructor(app: FastifyInstance) {
    this.app = app;
  }

  async request(method: string, url: string, body?: unknown, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
    const res = await this.app.inject({
      method: method as 'GET',
      url,
      headers: { ...(this.cookie ? { cookie: this.cookie } : {}), ...(this.csrf && method !== 'GET' ? { 'x-csrf-token': this.csrf } : {}), ...headers },
      ...(body !== undefined ? { payload: body as object } : {}),
    });
    const setCookie = res.headers['set-cookie'];
    const first = Array.isArray(setCookie) ? setCookie[0] : setCookie;
    if (first) this.cookie = first.split(';')[0]!;
    return res;
  }

  async json<T = Record<string, unknown>>(method: string, url: string, body?: unknown, expectStatus = 200): Promise<T> {
    const res = await this.request(method, url, body);
    if (res.statusCode !== expectStatus) throw new Error(`${method} ${url} answered ${res.statusCode} (expected ${expectStatus}): ${res.body}`);
    return res.json() as T;
  }

  async signup(email: string, password = 'correct horse battery', invitation?: string): Promise<this> {
    const r = await this.json<{ user: { id: string }; csrfToken: string }>('POST', '/api/auth/signup', { email, password, ...(invitation ? { invitation } : {}) }, 201);
    this.csrf = r.csrfToken;
    this.userId = r.user.id;
    return this;
  }

  async login(email: string, password = 'correct horse battery'): Promise<this> {
    const r = await this.json<{ user: { id: string }; csrfToken: string }>('POST', '/api/auth/login', { email, password });
    this.csrf = r.csrfToken;
    this.userId = r.user.id;
    return this;
  }
}

/** A job as the agent tests read it. */
export interface JobView {
  readonly status: string;
  readonly snapshotId: string | null;
  readonly error: string | null;
  readonly progress: unknown;
  readonly destinations: { readonly status: string }[];
}

/**
 * The agent tests' fleet: s3rver, a listening server with quick heartbeats (1 s, offline after 3 s),
 * Alice signed up with an API key and an S3 destination. `close` stops the agents in `agents` and
 * removes the folders in `dirs`.
 */
export interface AgentFleet {
  readonly s3: S3Server;
  readonly server: TestServer;
  readonly alice: Client;
  readonly key: string;
  readonly destinationId: string;
  readonly agents: AgentProcess[];
  readonly dirs: string[];
  job(id: string): Promise<JobView>;
  /** Waits for the job to complete, fail or be cancelled. */
  finished(id: string, timeoutMs?: number): Promise<JobView>;
  close(): Promise<void>;
}

/**
 * `heartbeatTimeoutSeconds`: longer for tests where agents work hard at once (their heartbeats come late
 * on a loaded machine); `databaseUrl`: on PostgreSQL instead of SQLite; `dataDir`: the server's, kept
 * when it closes; `log`: the server's logger (silent by default).
 */
export async function startAgentFleet(options: { heartbeatTimeoutSeconds?: number; databaseUrl?: string; dataDir?: string; log?: Logger } = {}): Promise<AgentFleet> {
  const s3 = await startS3Server('fleet');
  const { heartbeatTimeoutSeconds, ...serverOptions } = options;
  const server = await startTestServer({ listen: true, settings: { heartbeatTimeoutSeconds: heartbeatTimeoutSeconds ?? 3, heartbeatIntervalSeconds: 1 }, monitorIntervalMs: 300, ...serverOptions });
  const alice = await new Client(server.app).signup('alice@example.com');
  const key = (await alice.json<{ key: string }>('POST', '/api/keys', { name: 'laptop' }, 201)).key;
  const destinationId = (await alice.json<{ id: string }>('POST', '/api/destinations', { name: 'bucket', kind: 's3', location: `s3:${s3.endpoint}/${s3.bucket}/fleet`, ...s3.credentials }, 201)).id;
  const agents: AgentProcess[] = [];
  const dirs: string[] = [];
  const job = (id: string) => alice.json<JobView>('GET', `/api/jobs/${id}`);
  return {
    s3,
    server,
    alice,
    key,
    destinationId,
    agents,
    dirs,
    job,
    finished: (id, timeoutMs = 60_000) =>
      until(`job ${id} to finish`, async () => {
        const j = await job(id);
        return ['completed', 'failed', 'cancelled'].includes(j.status) ? j : undefined;
      }, timeoutMs),
    async close() {
      await Promise.all(agents.map((a) => a.stop('SIGKILL')));
      await server.close();
      await s3.stop();
      for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
    },
  };
}
