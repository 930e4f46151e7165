// The agent's HTTP client for its server: registration, messages and long polls, and the storage broker
// for write-only destinations. Every request carries the API key; none is retried here (the callers
// decide: the connection loop reconnects, the store's RetryStore retries transient failures).
import type { ObjectInfo } from '../store/store.ts';
import { StoreError } from '../store/store.ts';
import type { SignedRequest, StorageBroker } from '../store/presigned.ts';
import type { AgentHello, FromAgent, ToAgent, Welcome } from './protocol.ts';

export class ServerError extends Error {
  override name = 'ServerError';
  readonly status: number;

  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** The agent must stop: its key was revoked, it was removed, or it was asked to. */
export class AgentStoppedError extends Error {
  override name = 'AgentStoppedError';
}

export const AGENT_HEADER = 'x-coffer-agent';

export class ServerClient {
  readonly base: URL;
  private readonly key: string;
  agentId: string | undefined;

  constructor(server: string, key: string) {
    let url: URL;
    try {
      url = new URL(server);
    } catch {
      throw new ServerError(0, `--server ${server} is not a URL; use http(s)://host:port`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ServerError(0, `--server ${server}: use an http:// or https:// URL`);
    this.base = url;
    this.key = key;
  }

  private headers(json: boolean): Record<string, string> {
    return { authorization: `Bearer ${this.key}`, ...(this.agentId ? { [AGENT_HEADER]: this.agentId } : {}), ...(json ? { 'content-type': 'application/json' } : {}) };
  }

  /** `stop` ends the request early (the agent is stopping): it then rejects with the stop's reason. */
  async request<T>(method: string, path: string, body?: unknown, timeoutMs = 30_000, stop?: AbortSignal): Promise<T> {
    const url = new URL(path, this.base);
    let res: Response;
    try {
      const signal = stop ? AbortSignal.any([AbortSignal.timeout(timeoutMs), stop]) : AbortSignal.timeout(timeoutMs);
      res = await fetch(url, { method, headers: this.headers(body !== undefined), ...(body !== undefined ? { body: JSON.stringify(body) } : {}), signal });
    } catch (err) {
      if (stop?.aborted) throw stop.reason;
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new ServerError(0, `cannot reach the server at ${this.base.origin}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
    }
    const text = await res.text();
    if (!res.ok) {
      let message = text.slice(0, 300);
      try {
        message = (JSON.parse(text) as { error?: string }).error ?? message;
      } catch {
        // Not JSON: a proxy's page, say.
      }
      throw new ServerError(res.status, res.status === 401 ? `the server refused the API key (${message}); create a new key in the dashboard` : `the server answered ${res.status}: ${message}`);
    }
    return (text ? JSON.parse(text) : undefined) as T;
  }

  async register(hello: AgentHello): Promise<Welcome & { cursor: number }> {
    const welcome = await this.request<Welcome & { cursor: number }>('POST', '/api/agent/register', hello);
    this.agentId = welcome.agentId;
    return welcome;
  }

  async send(messages: readonly FromAgent[]): Promise<void> {
    await this.request('POST', '/api/agent/messages', { messages });
  }

  /** A long poll; `stop` ends it at once, so a stopping agent does not wait out the poll first. */
  async poll(cursor: number, free: number, waitSeconds: number, stop?: AbortSignal): Promise<{ messages: ToAgent[]; cursor: number }> {
    const query = new URLSearchParams({ cursor: String(cursor), free: String(free), wait: String(waitSeconds) });
    return this.request('GET', `/api/agent/poll?${query}`, undefined, (waitSeconds + 15) * 1000, stop);
  }

  /** Streams a body to the server (a tar the dashboard asked for); resolves once the server took all of it. */
  async upload(path: string, body: ReadableStream<Uint8Array>, contentType: string, signal?: AbortSignal): Promise<void> {
    let res: Response;
    try {
      res = await fetch(new URL(path, this.base), { method: 'PUT', headers: { ...this.headers(false), 'content-type': contentType }, body, duplex: 'half', ...(signal ? { signal } : {}) } as RequestInit);
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new ServerError(0, `the upload to the server stopped: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
    }
    const text = await res.text();
    if (!res.ok) throw new ServerError(res.status, `the server refused the upload (${res.status}): ${text.slice(0, 300)}`);
  }

  /** The WebSocket URL and headers of the agent channel. */
  socket(): { url: string; headers: Record<string, string> } {
    const url = new URL('/api/agent/ws', this.base);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    return { url: url.toString(), headers: this.headers(false) };
  }

  /** The broker of one server-held destination, for a PresignedStore. */
  broker(destinationId: string): StorageBroker {
    const path = `/api/agent/storage/${encodeURIComponent(destinationId)}`;
    const call = async <T>(method: string, sub: string, body?: unknown): Promise<T> => {
      try {
        return await this.request<T>(method, `${path}/${sub}`, body);
      } catch (err) {
        const status = (err as ServerError).status;
        throw new StoreError(status === 0 || status >= 500 ? 'transient' : status === 401 || status === 403 ? 'denied' : 'permanent', (err as Error).message, { cause: err });
      }
    };
    return {
      presignPut: async (name, size) => {
        const r = await call<{ exists: boolean; size: number } & Partial<SignedRequest>>('POST', 'put', { name, size });
        return r.exists ? { existingSize: r.size } : { url: r.url!, headers: r.headers ?? {} };
      },
      presignGet: (name) => call<SignedRequest>('POST', 'get', { name }),
      stat: async (name) => {
        const r = await call<{ exists: boolean; size?: number }>('POST', 'stat', { name });
        return r.exists ? r.size : undefined;
      },
      list: (dir, after) => call<{ objects: ObjectInfo[]; next?: string }>('GET', `list?${new URLSearchParams({ dir, ...(after !== undefined ? { after } : {}) })}`),
    };
  }
}
