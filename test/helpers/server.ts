// A server for tests: the same context and app as `coffer server`, on SQLite in a temporary directory
// or on a PostgreSQL database, talked to with inject() (no port) unless a test listens.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import pino from 'pino';
import { buildApp, type AppOptions } from '../../src/server/app.ts';
import { loadServerSettings } from '../../src/server/config.ts';
import type { ServerContext } from '../../src/server/context.ts';
import { openServerCore } from '../../src/server/core.ts';
import { Fleet } from '../../src/server/fleet.ts';

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

export async function startTestServer(options: { databaseUrl?: string; dataDir?: string; settings?: Record<string, unknown>; app?: AppOptions; listen?: boolean; monitorIntervalMs?: number } = {}): Promise<TestServer> {
  const dataDir = options.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-server-'));
  const settings = loadServerSettings({ env: {}, flags: { dataDir, ...(options.databaseUrl ? { databaseUrl: options.databaseUrl } : {}), ...options.settings } });
  const core = await openServerCore(settings, pino({ level: process.env.COFFER_TEST_LOG ?? 'silent' }), { eventPollMs: 50 });
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
