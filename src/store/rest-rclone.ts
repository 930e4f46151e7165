// The REST protocol to `rclone serve restic --stdio REMOTE`, which serves HTTP/2 (without TLS) on its
// stdin and stdout, as restic's rclone: backend uses it: every provider rclone supports becomes a
// destination. rclone runs in its own process group, so a Ctrl-C at the terminal reaches Coffer only,
// which then closes it in order; if Coffer dies, rclone sees its stdin close and exits. Its stdin and
// stdout are one end of a connected pair of Unix sockets, whose other end is the HTTP/2 session's own
// socket (a pair of pipes would need a JavaScript stream in between, which Node's HTTP/2 mishandles
// when rclone dies mid-request).
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import http2 from 'node:http2';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { parseRcloneLocation, rcloneDisplayLocation } from './locations.ts';
import type { ForeignObjectHandler } from './layout.ts';
import { RestStore, type RestRequest, type RestResponse, type RestTransport } from './rest.ts';
import { StoreError } from './store.ts';

/** rclone's own error lines kept for messages, and how long each may be. */
const STDERR_LINES = 20;
const STDERR_LINE_LENGTH = 500;
/** Silence on an open request for this long ends it. */
const IDLE_TIMEOUT = 120_000;
/** How long rclone gets to exit after its stdin closed, before it is killed. */
const EXIT_GRACE = 5_000;
/**
 * Megabytes the HTTP/2 session may hold in buffers. Node's default (10) is less than two packs in
 * flight: beyond it, new streams are refused (NGHTTP2_ENHANCE_YOUR_CALM). This bounds buffering, not
 * what is allocated.
 */
const SESSION_MEMORY_MB = 1024;

export interface RestRcloneOptions {
  /** Where COFFER_RCLONE (the rclone program, default 'rclone' on PATH) is read. Default process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Told about each listed entry that is not a repository object (skipped). */
  readonly onForeign?: ForeignObjectHandler;
}

type RcloneChild = ChildProcessByStdio<null, null, Readable>;

/** One running `rclone serve restic --stdio` and the HTTP/2 session over its pipes. */
interface Server {
  readonly child: RcloneChild;
  readonly session: http2.ClientHttp2Session;
  readonly exited: Promise<number | null>;
  /** Why it cannot serve (rclone missing, exited), once known. */
  failure?: StoreError;
  /** Whether it ever answered: an rclone that exits before that has refused the remote (a typo, say). */
  answered: boolean;
  readonly stderr: string[];
}

/**
 * Two connected Unix sockets. The listening socket lives for a moment in a directory only this user can
 * enter, so no one else can connect in between.
 */
async function socketPair(): Promise<[net.Socket, net.Socket]> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-rclone-'));
  const listener = net.createServer();
  try {
    listener.listen(path.join(dir, 'socket'));
    await once(listener, 'listening');
    const accepted = once(listener, 'connection') as Promise<[net.Socket]>;
    const ours = net.connect(path.join(dir, 'socket'));
    await once(ours, 'connect');
    const [theirs] = await accepted;
    return [ours, theirs];
  } finally {
    listener.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** Requests that change nothing on the server, so sending one again cannot do harm. */
const READS = new Set(['GET', 'HEAD']);

class RcloneTransport implements RestTransport {
  private readonly program: string;
  private readonly remote: string;
  private server: Promise<Server> | undefined;
  /** The server once it has started, to see whether it is still serving. */
  private started: Server | undefined;
  private child: RcloneChild | undefined;
  private readonly killOnExit = (): void => {
    this.child?.kill('SIGKILL');
  };

  constructor(program: string, remote: string) {
    this.program = program;
    this.remote = remote;
  }

  /**
   * The running server, started on first use and again after the last one ended unexpectedly. One
   * that could not start at all (rclone missing, a remote it cannot open) is not started again.
   */
  private serve(): Promise<Server> {
    const ended = this.started?.failure && this.started.failure.kind !== 'permanent';
    if (!this.server || ended) {
      const starting = this.start();
      this.server = starting;
      this.started = undefined;
      starting.then(
        (server) => {
          if (this.server === starting) this.started = server;
        },
        () => {
          // Could not even set up the sockets: try afresh next time.
          if (this.server === starting) this.server = undefined;
        },
      );
    }
    return this.server;
  }

  private async start(): Promise<Server> {
    const [ours, theirs] = await socketPair();
    // --b2-hard-delete, as restic passes it: on B2 a delete must free the space, not hide the file.
    const child = spawn(this.program, ['serve', 'restic', '--stdio', '--b2-hard-delete', this.remote], { stdio: [theirs, theirs, 'pipe'], detached: true });
    // rclone holds its own copy now; with ours closed, its death ends the session at once.
    theirs.destroy();
    const stderr: string[] = [];
    let partial = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop()!.slice(0, STDERR_LINE_LENGTH);
      for (const line of lines) if (line.trim()) stderr.push(line.slice(0, STDERR_LINE_LENGTH));
      stderr.splice(0, Math.max(0, stderr.length - STDERR_LINES));
    });
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    const session = http2.connect('http://rclone', { createConnection: () => ours, maxSessionMemory: SESSION_MEMORY_MB });
    const server: Server = { child, session, exited, answered: false, stderr };
    child.once('error', (err: NodeJS.ErrnoException) => {
      server.failure =
        err.code === 'ENOENT'
          ? new StoreError('permanent', `rclone is not installed (no ${this.program} on PATH); install it (apt-get install rclone, or https://rclone.org/install/) or set COFFER_RCLONE to its path`)
          : new StoreError('permanent', `cannot start ${this.program} (${err.code ?? err.message})`);
      session.destroy();
    });
    void exited.then((code) => {
      server.failure ??= this.exitFailure(server, code);
      session.destroy();
    });
    // Errors reach the requests in flight; the session's own would otherwise be unhandled.
    session.on('error', () => undefined);
    if (!this.child) process.on('exit', this.killOnExit);
    this.child = child;
    return server;
  }

  /** What rclone's exit means: a remote it could not open is permanent, a crash after working is not. */
  private exitFailure(server: Server, code: number | null): StoreError {
    const said = [...server.stderr].reverse().find((line) => /error|failed|fatal|couldn't|didn't/i.test(line)) ?? server.stderr.at(-1);
    const detail = said ? `: ${said.replace(/^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d /, '').trim()}` : '';
    if (server.answered) return new StoreError('transient', `rclone exited (code ${code})${detail}`);
    return new StoreError('permanent', `rclone could not serve ${this.remote} (exit code ${code})${detail}; check the remote with: rclone lsd ${this.remote}`);
  }

  async request(request: RestRequest): Promise<RestResponse> {
    try {
      return await this.requestOnce(request);
    } catch (err) {
      // rclone died under a read, or before it (killed while idle, out of memory): a read is safe to
      // send again, to a fresh rclone. A write is left to the caller, which knows whether it may repeat.
      if (!READS.has(request.method) || !(err instanceof StoreError) || err.kind !== 'transient' || this.started?.failure !== err) throw err;
      return this.requestOnce(request);
    }
  }

  private async requestOnce({ method, path, headers = {}, body, maxBody = Infinity }: RestRequest): Promise<RestResponse> {
    const server = await this.serve();
    if (server.failure) throw server.failure;
    try {
      return await this.exchange(server, { method, path, headers, body, maxBody });
    } catch (err) {
      // The stream failed because rclone is gone: wait for its exit to say why.
      if (!server.failure && server.child.exitCode === null && !server.session.destroyed) throw err;
      await Promise.race([server.exited, new Promise((resolve) => setTimeout(resolve, 1000))]);
      throw server.failure ?? err;
    }
  }

  private exchange(server: Server, { method, path, headers, body, maxBody }: Required<Omit<RestRequest, 'body'>> & Pick<RestRequest, 'body'>): Promise<RestResponse> {
    return new Promise((resolve, reject) => {
      const stream = server.session.request({ ':method': method, ':path': `/${path}`, ...headers, ...(body ? { 'content-length': String(body.length) } : {}) }, { endStream: !body });
      stream.setTimeout(IDLE_TIMEOUT, () => stream.close(http2.constants.NGHTTP2_CANCEL));
      let status = 0;
      const responseHeaders: Record<string, string | undefined> = {};
      const chunks: Buffer[] = [];
      let length = 0;
      let timedOut = false;
      stream.once('timeout', () => (timedOut = true));
      stream.once('response', (received) => {
        server.answered = true;
        status = Number(received[':status']);
        for (const [key, value] of Object.entries(received)) if (!key.startsWith(':')) responseHeaders[key] = Array.isArray(value) ? value.join(', ') : String(value);
      });
      stream.on('data', (chunk: Buffer) => {
        length += chunk.length;
        if (length > maxBody) stream.close(http2.constants.NGHTTP2_CANCEL);
        else chunks.push(chunk);
      });
      stream.once('error', reject);
      stream.once('close', () => {
        if (length > maxBody) reject(new Error(`rclone sends more than the ${maxBody} bytes allowed`));
        else if (timedOut) reject(Object.assign(new Error(`no answer from rclone for ${IDLE_TIMEOUT / 1000} s`), { code: 'ETIMEDOUT' }));
        else if (status === 0 || stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR) reject(Object.assign(new Error('the stream to rclone was cut'), { code: 'ECONNRESET' }));
        else resolve({ status, headers: responseHeaders, body: Buffer.concat(chunks, length) });
      });
      if (body) stream.end(body);
    });
  }

  async close(): Promise<void> {
    const server = await this.server?.catch(() => undefined);
    this.server = undefined;
    this.started = undefined;
    this.child = undefined;
    process.off('exit', this.killOnExit);
    if (!server) return;
    // Closing the session closes the socket: rclone reads the end of its input and exits.
    server.session.close();
    const timer = setTimeout(() => server.child.kill('SIGKILL'), EXIT_GRACE);
    await server.exited;
    clearTimeout(timer);
  }
}

/** A store for an rclone: location. */
export function openRestRcloneStore(location: string, options: RestRcloneOptions = {}): RestStore {
  const remote = parseRcloneLocation(location);
  const program = (options.env ?? process.env).COFFER_RCLONE || 'rclone';
  return new RestStore(rcloneDisplayLocation(remote), new RcloneTransport(program, remote), options.onForeign);
}
