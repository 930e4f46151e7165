// `coffer agent`: registers with the server, keeps a channel open (a WebSocket, or long polls when a
// WebSocket cannot get through), heartbeats, runs the jobs it is given and reports on them. Messages
// that cannot be sent wait in an outbox (the newest progress per job only) until the channel is back.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { VERSION } from '../version.ts';
import { AgentStoppedError, ServerClient, ServerError } from './client.ts';
import { PROTOCOL_VERSION, type FromAgent, type PlanSummary, type ToAgent } from './protocol.ts';
import { FleetWorkers } from './fleet-workers.ts';
import { RepoQueries } from './repo-queries.ts';
import { JobRunner } from './runner.ts';

export interface AgentOptions {
  readonly server: string;
  readonly key: string;
  /** Where the agent keeps its id between runs. */
  readonly stateDir: string;
  readonly capacity: number;
  readonly transport: 'auto' | 'websocket' | 'poll';
  readonly passphrase: () => Promise<string>;
  readonly signal: AbortSignal;
  readonly log: (message: string) => void;
  readonly spoolDir?: string;
  readonly workers?: number;
  readonly hostname?: string;
  /** The --label flags; absent: the agent keeps the labels set on the server. */
  readonly labels?: readonly string[];
  readonly describeError: (err: unknown) => string;
  readonly isRetryable: (err: unknown) => boolean;
}

const STATE_FILE = 'agent.json';
const MAX_BACKOFF_MS = 30_000;
/** WebSocket failures in a row after which 'auto' falls back to long polls. */
const SOCKET_FAILURES_BEFORE_POLL = 3;

/**
 * Waits `ms`, or less when `signal` aborts or `wake` fires `event`. Every listener goes once it is over:
 * an idle agent waits twice a second for days, and listeners left behind would pile up.
 */
export function sleep(ms: number, signal: AbortSignal, wake?: { target: EventTarget; event: string }): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      wake?.target.removeEventListener(wake.event, done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    wake?.target.addEventListener(wake.event, done, { once: true });
  });
}

interface AgentState {
  agentId?: string;
  server?: string;
  plans?: PlanSummary[];
}

function readState(dir: string): AgentState {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, STATE_FILE), 'utf8')) as AgentState;
  } catch {
    return {};
  }
}

function writeState(dir: string, state: AgentState): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, STATE_FILE);
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(state, null, 2), { mode: 0o600 });
  fs.renameSync(`${file}.tmp`, file);
}

export class Agent {
  private readonly options: AgentOptions;
  private readonly client: ServerClient;
  private readonly runner: JobRunner;
  private readonly queries: RepoQueries;
  private readonly shardWorkers: FleetWorkers;
  private readonly outbox: FromAgent[] = [];
  private socket: WebSocket | undefined;
  private cursor = 0;
  private heartbeatMs = 10_000;
  private stopped: Error | undefined;
  private state: AgentState;
  private readonly wake = new EventTarget();

  constructor(options: AgentOptions) {
    this.options = options;
    this.client = new ServerClient(options.server, options.key);
    this.state = readState(options.stateDir);
    this.runner = new JobRunner({ client: this.client, capacity: options.capacity, passphrase: options.passphrase, send: (m) => this.send(m), describeError: options.describeError, isRetryable: options.isRetryable, ...(options.spoolDir ? { spoolDir: options.spoolDir } : {}), ...(options.workers ? { workers: options.workers } : {}) });
    this.shardWorkers = new FleetWorkers({
      client: this.client,
      passphrase: options.passphrase,
      openDestination: (ref, signal) => this.runner.openDestination(ref, signal),
      capacity: options.capacity,
      heartbeatMs: () => this.heartbeatMs,
      log: options.log,
      describeError: options.describeError,
      ...(options.spoolDir ? { spoolDir: options.spoolDir } : {}),
    });
    this.queries = new RepoQueries({ client: this.client, passphrase: options.passphrase, openStore: (ref) => this.runner.openDestination(ref), send: (m) => this.send(m), describeError: options.describeError });
  }

  get agentId(): string | undefined {
    return this.client.agentId;
  }

  /** Queues a message; sent at once over an open socket, else with the next flush. */
  send(message: FromAgent): void {
    if (message.type === 'finished') this.options.log(`job ${message.jobId}: ${message.outcome}${message.outcome === 'failed' ? `: ${message.error}` : ''}`);
    if (message.type === 'progress') {
      const i = this.outbox.findIndex((m) => m.type === 'progress' && m.jobId === message.jobId);
      if (i >= 0) this.outbox.splice(i, 1);
    }
    this.outbox.push(message);
    this.flushSocket();
    this.wake.dispatchEvent(new Event('outbox'));
  }

  private flushSocket(): void {
    const ws = this.socket;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    for (const m of this.outbox.splice(0)) ws.send(JSON.stringify(m));
  }

  private async flushHttp(): Promise<void> {
    if (this.outbox.length === 0) return;
    const batch = this.outbox.splice(0, 500);
    try {
      await this.client.send(batch);
    } catch (err) {
      this.outbox.unshift(...batch);
      throw err;
    }
  }

  private handle(message: ToAgent): void {
    switch (message.type) {
      case 'job':
        this.options.log(`job ${message.job.id}: ${message.job.kind}${message.job.attempt > 1 ? ` (attempt ${message.job.attempt})` : ''}`);
        this.runner.start(message.job);
        return;
      case 'control':
        this.options.log(`job ${message.jobId}: ${message.action}`);
        this.runner.control(message.jobId, message.action);
        return;
      case 'limits':
        this.runner.setLimits(message);
        return;
      case 'plans':
        this.state = { ...this.state, plans: [...message.plans] };
        writeState(this.options.stateDir, this.state);
        this.options.log(`plans: ${message.plans.map((p) => `${p.name} (rev ${p.revision})`).join(', ') || 'none'}`);
        return;
      case 'query':
        this.queries.handle(message.id, message.destinations, message.query);
        return;
      case 'shards':
        this.shardWorkers.join(message.run, message.destinations);
        return;
      case 'revoked':
        this.stopped = new AgentStoppedError(`the server stopped this agent: ${message.reason}`);
        this.socket?.close();
        this.wake.dispatchEvent(new Event('outbox'));
        return;
    }
  }

  private async register(): Promise<void> {
    const hello = { protocol: PROTOCOL_VERSION, hostname: this.options.hostname ?? os.hostname(), os: `${os.type()} ${os.release()} ${os.arch()}`, version: VERSION, capacity: this.options.capacity, ...(this.options.labels ? { labels: this.options.labels } : {}), ...(this.state.agentId && this.state.server === this.client.base.origin ? { agentId: this.state.agentId } : {}) };
    for (let delay = 1000; ; delay = Math.min(delay * 2, MAX_BACKOFF_MS)) {
      try {
        const welcome = await this.client.register(hello);
        this.cursor = welcome.cursor;
        this.heartbeatMs = welcome.heartbeatSeconds * 1000;
        this.runner.setLimits(welcome);
        this.state = { ...this.state, agentId: welcome.agentId, server: this.client.base.origin };
        writeState(this.options.stateDir, this.state);
        this.options.log(`registered with ${this.client.base.origin} as agent ${welcome.agentId} (server ${welcome.serverVersion})`);
        return;
      } catch (err) {
        // A refused key or a mismatched protocol will not fix itself; an unreachable server may.
        if (err instanceof ServerError && err.status >= 400 && err.status < 500) throw err;
        this.options.log(`${(err as Error).message}; retrying in ${delay / 1000} s`);
        await sleep(delay, this.options.signal);
        if (this.options.signal.aborted) throw new AgentStoppedError('stopped');
      }
    }
  }

  private heartbeat(): FromAgent {
    return { type: 'heartbeat', running: this.runner.ids };
  }

  /** One WebSocket session; resolves when it closes. Rejects if it never opened. */
  private socketSession(): Promise<void> {
    return new Promise((resolve, reject) => {
      const { url, headers } = this.client.socket();
      const ws = new WebSocket(url, { headers, handshakeTimeout: 15_000 });
      let opened = false;
      let beat: NodeJS.Timeout | undefined;
      const onAbort = (): void => ws.close(1000, 'agent stopping');
      this.options.signal.addEventListener('abort', onAbort, { once: true });
      ws.on('open', () => {
        opened = true;
        this.options.log('connected (WebSocket)');
        this.socket = ws;
        this.outbox.unshift(this.heartbeat());
        this.flushSocket();
        beat = setInterval(() => this.send(this.heartbeat()), this.heartbeatMs);
      });
      ws.on('message', (data) => {
        try {
          this.handle(JSON.parse(String(data)) as ToAgent);
        } catch (err) {
          this.options.log(`bad message from the server: ${(err as Error).message}`);
        }
      });
      ws.on('unexpected-response', (_req, res) => {
        reject(new ServerError(res.statusCode ?? 0, `the server refused the WebSocket (HTTP ${res.statusCode})`));
        ws.terminate();
      });
      ws.on('error', (err) => {
        if (!opened) reject(err);
      });
      ws.on('close', (code, reason) => {
        clearInterval(beat);
        this.options.signal.removeEventListener('abort', onAbort);
        if (this.socket === ws) this.socket = undefined;
        if (code === 4001 && !this.stopped) this.stopped = new AgentStoppedError(`the server closed the connection: ${reason.toString() || 'API key revoked'}`);
        if (opened) resolve();
        else reject(new Error(`WebSocket closed before it opened (${code})`));
      });
    });
  }

  /** Long polls until stopped; heartbeats and outgoing messages go by POST. */
  private async pollLoop(): Promise<void> {
    let lastBeat = 0;
    const sender = (async () => {
      while (!this.options.signal.aborted && !this.stopped) {
        if (Date.now() - lastBeat >= this.heartbeatMs) {
          lastBeat = Date.now();
          this.outbox.unshift(this.heartbeat());
        }
        await this.flushHttp().catch((err: Error) => this.options.log(`sending to the server failed: ${err.message}`));
        await sleep(500, this.options.signal, { target: this.wake, event: 'outbox' });
      }
    })();
    try {
      for (let delay = 1000; !this.options.signal.aborted && !this.stopped; ) {
        try {
          const free = this.runner.free;
          const answer = await this.client.poll(this.cursor, free, 25, this.options.signal);
          this.cursor = answer.cursor;
          for (const m of answer.messages) this.handle(m);
          delay = 1000;
        } catch (err) {
          if (this.options.signal.aborted) break;
          if (err instanceof ServerError && err.status === 401) {
            this.stopped = new AgentStoppedError(err.message);
            break;
          }
          this.options.log(`${(err as Error).message}; polling again in ${delay / 1000} s`);
          await sleep(delay, this.options.signal);
          delay = Math.min(delay * 2, MAX_BACKOFF_MS);
        }
      }
    } finally {
      this.wake.dispatchEvent(new Event('outbox'));
      await sender;
    }
  }

  async run(): Promise<void> {
    await this.register();
    let failures = 0;
    let mode = this.options.transport === 'poll' ? 'poll' : 'websocket';
    try {
      while (!this.options.signal.aborted && !this.stopped) {
        if (mode === 'poll') {
          this.options.log('connected (long polling)');
          await this.pollLoop();
          continue;
        }
        try {
          await this.socketSession();
          failures = 0;
          if (!this.options.signal.aborted && !this.stopped) this.options.log('connection to the server lost; reconnecting');
        } catch (err) {
          failures++;
          if (err instanceof ServerError && err.status === 401) throw new AgentStoppedError('the server refused the API key; create a new key in the dashboard');
          this.options.log(`WebSocket: ${(err as Error).message}`);
          // Fall back only when the server answers HTTP but not the upgrade (a proxy without WebSocket
          // support); a server that is down is waited for on the WebSocket.
          if (this.options.transport === 'auto' && err instanceof ServerError && err.status > 0 && failures >= SOCKET_FAILURES_BEFORE_POLL) {
            this.options.log('falling back to long polling');
            mode = 'poll';
            continue;
          }
        }
        await sleep(Math.min(1000 * 2 ** failures, MAX_BACKOFF_MS), this.options.signal);
      }
      if (this.stopped) throw this.stopped;
    } finally {
      await Promise.all([this.runner.stopAll(), this.shardWorkers.stopAll()]);
      await this.queries.close();
      // The jobs just stopped say so; one last try to tell the server.
      if (this.outbox.length > 0) {
        if (this.socket?.readyState === WebSocket.OPEN) this.flushSocket();
        else await this.flushHttp().catch(() => {});
      }
      this.socket?.close(1000, 'agent stopping');
    }
  }
}
