// The REST protocol over HTTP(S): rest:http(s)://[user[:password]@]host[:port]/path/, as restic writes
// it. Connections are kept alive and reused; a connection that neither connects nor answers in time
// fails (and is retried by RetryStore) instead of hanging the backup.
import http from 'node:http';
import https from 'node:https';
import { parseRestLocation, restDisplayLocation } from './locations.ts';
import type { ForeignObjectHandler } from './layout.ts';
import { RestStore, type RestRequest, type RestResponse, type RestTransport } from './rest.ts';
import { tlsAgentOptions, type TlsOptions } from './tls.ts';

const CONNECT_TIMEOUT = 15_000;
/** Silence on an open request for this long ends it. */
const IDLE_TIMEOUT = 120_000;

export interface RestHttpOptions {
  /** Where COFFER_REST_USERNAME and COFFER_REST_PASSWORD are read, for servers with htpasswd. Default process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly tls?: TlsOptions;
  /** Told about each listed entry that is not a repository object (skipped). */
  readonly onForeign?: ForeignObjectHandler;
}

class HttpTransport implements RestTransport {
  private readonly base: URL;
  private readonly agent: http.Agent;
  private readonly authorization: string | undefined;

  constructor(base: string, agent: http.Agent, authorization: string | undefined) {
    this.base = new URL(base);
    this.agent = agent;
    this.authorization = authorization;
  }

  request({ method, path, headers = {}, body, maxBody = Infinity }: RestRequest): Promise<RestResponse> {
    const url = new URL(path, this.base);
    const send = url.protocol === 'https:' ? https.request : http.request;
    return new Promise((resolve, reject) => {
      const req = send(url, {
        method,
        agent: this.agent,
        headers: { ...headers, ...(this.authorization ? { authorization: this.authorization } : {}), ...(body ? { 'content-length': String(body.length) } : {}) },
      });
      const fail = (err: Error): void => {
        req.destroy();
        reject(err);
      };
      const connectTimer = setTimeout(() => fail(Object.assign(new Error(`no connection after ${CONNECT_TIMEOUT / 1000} s`), { code: 'ETIMEDOUT' })), CONNECT_TIMEOUT);
      req.once('socket', (socket) => {
        // A reused keep-alive socket is connected already.
        if (!socket.connecting) clearTimeout(connectTimer);
        else socket.once('connect', () => clearTimeout(connectTimer));
      });
      req.setTimeout(IDLE_TIMEOUT, () => fail(Object.assign(new Error(`no answer for ${IDLE_TIMEOUT / 1000} s`), { code: 'ETIMEDOUT' })));
      req.once('error', (err) => {
        clearTimeout(connectTimer);
        reject(err);
      });
      req.once('response', (res) => {
        clearTimeout(connectTimer);
        const declared = Number(res.headers['content-length']);
        if (declared > maxBody) {
          fail(new Error(`the server announces ${declared} bytes, more than the ${maxBody} allowed`));
          return;
        }
        const chunks: Buffer[] = [];
        let length = 0;
        res.on('data', (chunk: Buffer) => {
          length += chunk.length;
          if (length > maxBody) fail(new Error(`the server sends more than the ${maxBody} bytes allowed`));
          else chunks.push(chunk);
        });
        // Node reports a connection that ended before the whole body as an error of the response.
        res.once('error', reject);
        res.once('end', () => {
          const flat: Record<string, string | undefined> = {};
          for (const [key, value] of Object.entries(res.headers)) flat[key] = Array.isArray(value) ? value.join(', ') : value;
          resolve({ status: res.statusCode ?? 0, headers: flat, body: Buffer.concat(chunks, length) });
        });
      });
      req.end(body);
    });
  }

  async close(): Promise<void> {
    this.agent.destroy();
  }
}

/** A store for a rest: location. */
export function openRestHttpStore(location: string, options: RestHttpOptions = {}): RestStore {
  const parsed = parseRestLocation(location);
  const display = restDisplayLocation(parsed);
  const env = options.env ?? process.env;
  const user = parsed.user ?? env.COFFER_REST_USERNAME;
  const password = parsed.password ?? env.COFFER_REST_PASSWORD;
  const authorization = user || password ? `Basic ${Buffer.from(`${user ?? ''}:${password ?? ''}`).toString('base64')}` : undefined;
  const agentOptions = { keepAlive: true, ...tlsAgentOptions(options.tls, display) };
  const agent = parsed.url.startsWith('https:') ? new https.Agent(agentOptions) : new http.Agent({ keepAlive: true });
  return new RestStore(display, new HttpTransport(parsed.url, agent, authorization), options.onForeign);
}
