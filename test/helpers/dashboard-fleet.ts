// A small fleet for dashboard tests and benchmarks, set up through the HTTP API rather than the forms:
// a `coffer server` process with its first account, an API key, and a `coffer agent` process online.
import path from 'node:path';
import type { BrowserContext } from 'playwright-core';
import { startAgent, until, type AgentProcess } from './agent.ts';
import { startServerProcess, type ServerProcess } from './server-process.ts';

export const FLEET_EMAIL = 'ann@example.com';
export const FLEET_PASSWORD = 'correct horse battery';

/** The API over HTTP as a signed-in person: the session cookie, and the CSRF token on writes. */
export class HttpClient {
  readonly url: string;
  cookie = '';
  csrf = '';

  constructor(url: string) {
    this.url = url;
  }

  async call<T>(method: string, p: string, body?: unknown): Promise<T> {
    const res = await fetch(this.url + p, {
      method,
      headers: { ...(this.cookie ? { cookie: this.cookie } : {}), ...(this.csrf && method !== 'GET' ? { 'x-csrf-token': this.csrf } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${text}`);
    const cookie = res.headers.get('set-cookie');
    if (cookie) this.cookie = cookie.split(';')[0]!;
    return (text ? JSON.parse(text) : undefined) as T;
  }
}

export interface DashboardFleet {
  readonly server: ServerProcess;
  readonly agent: AgentProcess;
  readonly agentId: string;
  readonly api: HttpClient;
  /** Signs the browser in with this account's session (no trip through the sign-in page). */
  signIn(context: BrowserContext): Promise<void>;
  stop(): Promise<void>;
}

export async function startDashboardFleet(dir: string): Promise<DashboardFleet> {
  const server = await startServerProcess({ dataDir: path.join(dir, 'server') });
  const api = new HttpClient(server.url);
  let agent: AgentProcess | undefined;
  try {
    api.csrf = (await api.call<{ csrfToken: string }>('POST', '/api/auth/signup', { email: FLEET_EMAIL, password: FLEET_PASSWORD })).csrfToken;
    const { key } = await api.call<{ key: string }>('POST', '/api/keys', { name: 'files-host' });
    const started = startAgent({ server: server.url, key, dir: path.join(dir, 'agent') });
    agent = started;
    const agentId = (await until('the agent to come online', async () => (await api.call<{ id: string; status: string }[]>('GET', '/api/agents')).find((a) => a.status === 'online'), 30_000)).id;
    return {
      server,
      agent: started,
      agentId,
      api,
      async signIn(context) {
        const at = api.cookie.indexOf('=');
        await context.addCookies([{ name: api.cookie.slice(0, at), value: api.cookie.slice(at + 1), url: server.url }]);
      },
      async stop() {
        await started.stop('SIGKILL');
        await server.stop();
      },
    };
  } catch (err) {
    await agent?.stop('SIGKILL');
    await server.stop();
    throw err;
  }
}
