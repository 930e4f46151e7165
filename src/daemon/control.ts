// The daemon's control socket: HTTP with JSON bodies over a Unix socket at <data dir>/daemon/control.sock.
// The socket is mode 0600 inside a 0700 directory owned by the daemon's user, so no other user of the
// machine can connect (the kernel refuses before any byte is read); nothing listens on the network.
//
// Routes (v1):
//   GET  /v1/status               → DaemonStatus (status.ts)
//   POST /v1/pause   {job?|all}   → { ok, message }
//   POST /v1/resume  {job?|all}
//   POST /v1/cancel  {job}
//   POST /v1/run     {plan}
// Errors: 4xx/5xx with { error }.
//
// Interface:
//   controlSocketPath(dataDir)
//   ControlServer.listen(dataDir, handlers) → refuses when another daemon answers on the socket
//   controlRequest(dataDir, method, path, body?) → the parsed reply; DaemonUnreachableError when none
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';

export class ControlError extends Error {
  override name = 'ControlError';
  readonly status: number;

  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** The daemon is not running, or this user may not reach it. */
export class DaemonUnreachableError extends Error {
  override name = 'DaemonUnreachableError';
}

export interface ControlReply {
  readonly ok: true;
  readonly message: string;
  readonly [key: string]: unknown;
}

export interface ControlHandlers {
  status(): unknown;
  pause(target: { job?: number; all?: boolean }): ControlReply;
  resume(target: { job?: number; all?: boolean }): ControlReply;
  cancel(job: number): ControlReply;
  run(plan: string): ControlReply;
}

/** Unix socket paths are limited to 107 bytes (sun_path). */
const MAX_SOCKET_PATH = 107;
const MAX_BODY = 64 * 1024;

export function controlDir(dataDir: string): string {
  return path.join(dataDir, 'daemon');
}

export function controlSocketPath(dataDir: string): string {
  return path.join(controlDir(dataDir), 'control.sock');
}

function checkLength(socket: string): void {
  if (Buffer.byteLength(socket) > MAX_SOCKET_PATH) {
    throw new ControlError(500, `the control socket path ${socket} is longer than ${MAX_SOCKET_PATH} bytes; use a shorter --data-dir`);
  }
}

/** Whether something answers on the socket (a daemon that is running). */
function answers(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const conn = net.connect(socket);
    conn.once('connect', () => {
      conn.destroy();
      resolve(true);
    });
    conn.once('error', () => resolve(false));
  });
}

function target(body: Record<string, unknown>): { job?: number; all?: boolean } {
  if (body.all === true) return { all: true };
  if (body.job === undefined) return {};
  return { job: jobId(body.job) };
}

function jobId(value: unknown): number {
  const id = typeof value === 'number' ? value : typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(id) || id <= 0) throw new ControlError(400, `"${String(value)}" is not a job id; coffer jobs lists them`);
  return id;
}

async function readBody(req: http.IncomingMessage): Promise<Record<string, unknown>> {
  let size = 0;
  const parts: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new ControlError(413, 'request too large');
    parts.push(chunk);
  }
  if (size === 0) return {};
  try {
    const value: unknown = JSON.parse(Buffer.concat(parts).toString('utf8'));
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not an object');
    return value as Record<string, unknown>;
  } catch {
    throw new ControlError(400, 'the request body is not a JSON object');
  }
}

function route(handlers: ControlHandlers, method: string, url: string, body: Record<string, unknown>): unknown {
  const key = `${method} ${url}`;
  switch (key) {
    case 'GET /v1/status':
      return handlers.status();
    case 'POST /v1/pause':
      return handlers.pause(target(body));
    case 'POST /v1/resume':
      return handlers.resume(target(body));
    case 'POST /v1/cancel':
      return handlers.cancel(jobId(body.job));
    case 'POST /v1/run':
      if (typeof body.plan !== 'string' || body.plan === '') throw new ControlError(400, 'run needs a plan name');
      return handlers.run(body.plan);
    default:
      throw new ControlError(404, `no such request: ${key}`);
  }
}

export class ControlServer {
  private readonly server: http.Server;
  readonly socket: string;

  private constructor(server: http.Server, socket: string) {
    this.server = server;
    this.socket = socket;
  }

  static async listen(dataDir: string, handlers: ControlHandlers): Promise<ControlServer> {
    const dir = controlDir(dataDir);
    const socket = controlSocketPath(dataDir);
    checkLength(socket);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    // mkdir leaves an existing directory as it was: it must be ours and closed to everyone else.
    const stat = fs.statSync(dir);
    if (stat.uid !== process.getuid!()) throw new ControlError(500, `${dir} belongs to another user (uid ${stat.uid}); use your own --data-dir`);
    fs.chmodSync(dir, 0o700);
    await ControlServer.assertNoneRunning(dataDir);
    fs.rmSync(socket, { force: true });
    const server = http.createServer((req, res) => {
      const send = (status: number, value: unknown): void => {
        const text = JSON.stringify(value);
        res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        res.end(text);
      };
      readBody(req)
        .then((body) => send(200, route(handlers, req.method ?? 'GET', req.url ?? '/', body)))
        .catch((err: unknown) => send(err instanceof ControlError ? err.status : 500, { error: err instanceof Error ? err.message : String(err) }));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socket, () => resolve());
    });
    fs.chmodSync(socket, 0o600);
    return new ControlServer(server, socket);
  }

  /** Refuses when a daemon answers on the data directory's socket (a stale socket file is harmless). */
  static async assertNoneRunning(dataDir: string): Promise<void> {
    const socket = controlSocketPath(dataDir);
    if (fs.existsSync(socket) && (await answers(socket))) throw new ControlError(409, `a daemon is already running for ${dataDir} (it answers on ${socket}); see coffer daemon status`);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    fs.rmSync(this.socket, { force: true });
  }
}

/** One request to the daemon of `dataDir`. */
export function controlRequest(dataDir: string, method: 'GET' | 'POST', route: string, body?: unknown): Promise<unknown> {
  const socket = controlSocketPath(dataDir);
  return new Promise((resolve, reject) => {
    const text = body === undefined ? '' : JSON.stringify(body);
    const req = http.request({ socketPath: socket, agent: false, method, path: route, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }, timeout: 30_000 }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => {
        let value: Record<string, unknown>;
        try {
          value = JSON.parse(Buffer.concat(parts).toString('utf8')) as Record<string, unknown>;
        } catch {
          reject(new DaemonUnreachableError(`the daemon's answer on ${socket} is not JSON; is something else listening there?`));
          return;
        }
        if (res.statusCode === 200) resolve(value);
        else reject(new ControlError(res.statusCode ?? 500, String(value.error ?? `request failed with status ${res.statusCode}`)));
      });
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 30 s')));
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') reject(new DaemonUnreachableError(`the daemon is not running for ${dataDir} (nothing answers on ${socket}); start it with coffer daemon`));
      else if (err.code === 'EACCES' || err.code === 'EPERM') reject(new DaemonUnreachableError(`permission denied on ${socket}: the daemon there belongs to another user`));
      else reject(new DaemonUnreachableError(`cannot reach the daemon on ${socket}: ${err.message}`));
    });
    req.end(text);
  });
}
