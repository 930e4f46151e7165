// The agent side of the API: registration, the WebSocket channel, the long-poll fallback, and the
// messages agents send (heartbeats, progress, logs, results). Each server process keeps the agents
// connected to it; messages for an agent travel through the event log, so they reach it whichever
// server it is connected to.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { PROTOCOL_VERSION, type AgentHello, type FromAgent, type JobAssignment, type ToAgent } from '../../agent/protocol.ts';
import type { RetryPolicy } from '../../jobs/index.ts';
import { requireKey, type KeyAuth } from '../auth/guard.ts';
import type { ServerContext } from '../context.ts';
import type { Agent } from '../db/schema.ts';
import type { ServerEvent } from '../events/event-log.ts';
import { HttpError } from '../http-error.ts';
import { appendLog, claimJobs, finishJob, markPaused, markResumed, recordProgress } from '../jobs/lifecycle.ts';
import { agentOfUser, heartbeat, reconcileRunning, registerAgent } from './agents.ts';
import { currentLimits } from './limits.ts';

export const AGENT_HEADER = 'x-coffer-agent';
const MAX_POLL_SECONDS = 30;
const MAX_MESSAGES = 500;

interface Connection {
  readonly agentId: string;
  readonly keyId: string;
  send(message: ToAgent): void;
  /**
   * Sends the limits as the database has them now. One read at a time per connection, so the last one
   * sent is never older than a change the connection was told of.
   */
  sendLimits(): void;
  close(code: number, reason: string): void;
}

export class AgentHub {
  private readonly ctx: ServerContext;
  private readonly retryPolicy: RetryPolicy;
  private readonly connections = new Map<string, Set<Connection>>();
  /** Long polls waiting for something for their agent. */
  private readonly waiting = new Map<string, Set<() => void>>();
  /** One dispatch at a time per agent in this process, so capacity is never overcounted. */
  private readonly dispatching = new Map<string, Promise<void>>();
  private readonly revokedKeys = new Set<string>();
  private unsubscribe: (() => void) | undefined;
  /** Shards of scaled-out runs the agent holds (src/server/scale-out/fleet-shards.ts): they take job slots too. */
  shardsHeld: (agentId: string) => Promise<number> = async () => 0;
  /** Told of answers to questions asked of agents (src/server/snapshots/agent-queries.ts). */
  onAnswer: ((agentId: string, answer: Extract<FromAgent, { type: 'answer' }>) => Promise<void>) | undefined;

  constructor(ctx: ServerContext, retryPolicy: RetryPolicy) {
    this.ctx = ctx;
    this.retryPolicy = retryPolicy;
  }

  start(): void {
    this.unsubscribe = this.ctx.events.subscribe((event) => this.onEvent(event));
  }

  stop(): void {
    this.unsubscribe?.();
    for (const set of this.connections.values()) for (const c of set) c.close(1001, 'server shutting down');
    for (const set of this.waiting.values()) for (const wake of [...set]) wake();
  }

  /** Agents connected to this process (for /readyz and tests). */
  get connected(): number {
    return this.connections.size;
  }

  private onEvent(event: ServerEvent): void {
    if (event.type === 'key.revoked') {
      const keyId = (event.data as { keyId: string }).keyId;
      this.revokedKeys.add(keyId);
      for (const set of this.connections.values()) {
        for (const c of set) {
          if (c.keyId !== keyId) continue;
          c.send({ type: 'revoked', reason: 'the API key was revoked' });
          c.close(4001, 'API key revoked');
        }
      }
      return;
    }
    if (!event.agentId) return;
    if (event.type === 'agent.message') {
      const message = event.data as ToAgent;
      for (const c of this.connections.get(event.agentId) ?? []) {
        if (message.type === 'limits') c.sendLimits();
        else c.send(message);
      }
    }
    if (event.type === 'agent.message' || event.type === 'agent.dispatch') {
      for (const wake of [...(this.waiting.get(event.agentId) ?? [])]) wake();
      if (event.type === 'agent.dispatch' && this.connections.has(event.agentId)) void this.dispatch(event.agentId);
    }
  }

  /** Claims what the agent has room for and sends it down its socket. */
  dispatch(agentId: string): Promise<void> {
    const previous = this.dispatching.get(agentId) ?? Promise.resolve();
    const next = previous
      .then(async () => {
        const conns = this.connections.get(agentId);
        if (!conns || conns.size === 0) return;
        for (const job of await this.claimFor(agentId)) for (const c of conns) c.send({ type: 'job', job });
      })
      .catch((err) => this.ctx.log.error({ err, agent: agentId }, 'dispatch failed'))
      .finally(() => {
        if (this.dispatching.get(agentId) === next) this.dispatching.delete(agentId);
      });
    this.dispatching.set(agentId, next);
    return next;
  }

  private async claimFor(agentId: string): Promise<JobAssignment[]> {
    const agent = await this.ctx.db.selectFrom('agents').select(['capacity', 'status']).where('id', '=', agentId).executeTakeFirst();
    if (!agent || agent.status !== 'online') return [];
    // A paused job keeps its slot on the agent (agent/runner.ts): it resumes where it stands.
    const held = await this.ctx.db.selectFrom('jobs').select((eb) => eb.fn.countAll<number>().as('n')).where('agent_id', '=', agentId).where('status', 'in', ['running', 'paused']).executeTakeFirstOrThrow();
    return claimJobs(this.ctx, agentId, agent.capacity - Number(held.n) - (await this.shardsHeld(agentId)));
  }

  private async agentFor(request: FastifyRequest, auth: KeyAuth): Promise<Agent> {
    const header = request.headers[AGENT_HEADER];
    const query = (request.query as { agent?: string } | undefined)?.agent;
    return agentOfUser(this.ctx, auth.user.id, typeof header === 'string' ? header : query);
  }

  async handle(agent: Agent, message: FromAgent): Promise<void> {
    switch (message?.type) {
      case 'heartbeat':
        await heartbeat(this.ctx, agent);
        await reconcileRunning(this.ctx, agent, Array.isArray(message.running) ? message.running.map(String) : []);
        if (this.connections.has(agent.id)) await this.dispatch(agent.id);
        return;
      case 'progress':
        await recordProgress(this.ctx, agent.id, String(message.jobId), message.progress);
        return;
      case 'log':
        await appendLog(this.ctx, agent.id, String(message.jobId), Array.isArray(message.lines) ? message.lines.slice(0, MAX_MESSAGES) : []);
        return;
      case 'paused':
        await markPaused(this.ctx, agent.id, String(message.jobId));
        return;
      case 'resumed':
        await markResumed(this.ctx, agent.id, String(message.jobId));
        return;
      case 'finished':
        await finishJob(this.ctx, agent.id, String(message.jobId), message, this.retryPolicy);
        if (this.connections.has(agent.id)) await this.dispatch(agent.id);
        return;
      case 'answer':
        await this.onAnswer?.(agent.id, message);
        return;
      default:
        throw new HttpError(400, `unknown message type ${JSON.stringify((message as { type?: unknown })?.type)}`);
    }
  }

  /** Serves one agent socket. Listening starts at once; messages wait in order until the agent is looked up. */
  private attach(lookup: Promise<Agent>, keyId: string, socket: WebSocket): void {
    let agent: Agent | undefined;
    let chain: Promise<unknown> = lookup.then(
      (found) => {
        agent = found;
        let limits = Promise.resolve();
        const connection: Connection = {
          agentId: found.id,
          keyId,
          send: (message) => {
            if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(message));
          },
          sendLimits: () => {
            limits = limits
              .then(async () => {
                const current = await currentLimits(this.ctx, found.id);
                if (current) connection.send({ type: 'limits', ...current });
              })
              .catch((err) => this.ctx.log.warn({ err, agent: found.id }, 'could not send the limits'));
          },
          close: (code, reason) => socket.close(code, reason),
        };
        const set = this.connections.get(found.id) ?? new Set();
        set.add(connection);
        this.connections.set(found.id, set);
        socket.on('close', () => {
          set.delete(connection);
          if (set.size === 0 && this.connections.get(found.id) === set) this.connections.delete(found.id);
        });
        if (socket.readyState !== socket.OPEN) set.delete(connection);
        else {
          // A change made since the welcome was not sent to this agent while it had no socket here.
          connection.sendLimits();
          void this.dispatch(found.id);
        }
      },
      (err: Error) => socket.close(4004, err.message.slice(0, 120)),
    );
    // Messages are handled in order: a 'finished' must not overtake the progress before it.
    socket.on('message', (data) => {
      chain = chain.then(async () => {
        if (!agent) return;
        let message: FromAgent;
        try {
          message = JSON.parse(String(data)) as FromAgent;
        } catch {
          socket.close(1007, 'messages must be JSON');
          return;
        }
        try {
          await this.handle(agent, message);
        } catch (err) {
          this.ctx.log.warn({ err, agent: agent.id }, 'agent message refused');
        }
      });
    });
  }

  /**
   * A wake-up for the agent's long poll, armed BEFORE the poll looks for work: a nudge that arrives while
   * it looks (claiming jobs, reading the event log) then ends the wait instead of being missed, which
   * left the poll asleep for its whole wait with a job ready. `cancel` disarms it (safe to call twice).
   */
  private armWake(agentId: string, ms: number): { readonly woken: Promise<void>; cancel(): void } {
    const set = this.waiting.get(agentId) ?? new Set();
    let wake!: () => void;
    const woken = new Promise<void>((resolve) => {
      wake = () => {
        clearTimeout(timer);
        set.delete(wake);
        if (set.size === 0 && this.waiting.get(agentId) === set) this.waiting.delete(agentId);
        resolve();
      };
    });
    const timer = setTimeout(wake, ms);
    set.add(wake);
    this.waiting.set(agentId, set);
    return { woken, cancel: wake };
  }

  async routes(app: FastifyInstance): Promise<void> {
    const ctx = this.ctx;
    app.post<{ Body: AgentHello }>(
      '/api/agent/register',
      {
        schema: {
          summary: 'an agent registers (or comes back): host name, OS, version, capacity, labels',
          body: {
            type: 'object',
            required: ['protocol', 'hostname', 'os', 'version', 'capacity'],
            properties: { protocol: { type: 'integer' }, hostname: { type: 'string' }, os: { type: 'string' }, version: { type: 'string' }, capacity: { type: 'integer' }, agentId: { type: 'string' }, labels: { type: 'array', maxItems: 100, items: { type: 'string' } } },
          },
        },
      },
      async (request) => {
        const auth = requireKey(request);
        if (request.body.protocol !== PROTOCOL_VERSION) {
          throw new HttpError(400, `this server speaks agent protocol ${PROTOCOL_VERSION} and the agent ${request.body.protocol}; install the same coffer version on both`);
        }
        const { agent, welcome } = await registerAgent(ctx, auth.user.id, auth.keyId, request.body);
        // The cursor before the read: a change after the read is an event after the cursor, replayed by the long poll.
        const cursor = ctx.events.cursor;
        const limits = await currentLimits(ctx, agent.id);
        return { ...welcome, ...limits, cursor };
      },
    );

    app.post<{ Body: { messages: FromAgent[] } }>(
      '/api/agent/messages',
      {
        schema: {
          summary: 'agent messages over plain HTTP (the long-poll transport): heartbeats, progress, logs, results',
          body: { type: 'object', required: ['messages'], properties: { messages: { type: 'array', maxItems: MAX_MESSAGES, items: { type: 'object' } } } },
        },
      },
      async (request) => {
        const agent = await this.agentFor(request, requireKey(request));
        for (const message of request.body.messages) await this.handle(agent, message);
        return { ok: true };
      },
    );

    app.get<{ Querystring: { agent?: string; cursor?: number; wait?: number; free?: number } }>(
      '/api/agent/poll',
      {
        schema: {
          summary: 'long poll: jobs and commands for the agent since the cursor; waits up to `wait` seconds',
          querystring: { type: 'object', properties: { agent: { type: 'string' }, cursor: { type: 'integer', minimum: 0 }, wait: { type: 'integer', minimum: 0, maximum: MAX_POLL_SECONDS }, free: { type: 'integer', minimum: 0, maximum: 64 } } },
        },
      },
      async (request) => {
        const auth = requireKey(request);
        const agent = await this.agentFor(request, auth);
        const deadline = Date.now() + (request.query.wait ?? 25) * 1000;
        let cursor = request.query.cursor ?? ctx.events.cursor;
        for (;;) {
          if (this.revokedKeys.has(auth.keyId)) throw new HttpError(401, 'the API key was revoked');
          const wake = this.armWake(agent.id, Math.max(0, deadline - Date.now()));
          try {
            // Everything up to here was delivered, so committed: the read below sees it. An event
            // delivered after the read must not be skipped by moving the cursor past it.
            const delivered = ctx.events.cursor;
            const messages: ToAgent[] = [];
            // The agent counts its jobs; the shards it holds take slots too.
            const free = Math.min(request.query.free ?? 0, agent.capacity - (await this.shardsHeld(agent.id)));
            if (free > 0) for (const job of await claimJobs(ctx, agent.id, free)) messages.push({ type: 'job', job });
            const { events } = await ctx.events.since(cursor, { agentId: agent.id }, MAX_MESSAGES);
            for (const e of events) {
              cursor = e.id;
              if (e.type === 'agent.message') messages.push(e.data as ToAgent);
            }
            if (events.length === 0) cursor = Math.max(cursor, delivered);
            if (messages.length > 0 || Date.now() >= deadline) return { messages, cursor };
            await wake.woken;
          } finally {
            wake.cancel();
          }
        }
      },
    );

    app.get<{ Querystring: { agent?: string } }>('/api/agent/ws', { websocket: true, schema: { summary: 'the agent WebSocket: ToAgent messages down, FromAgent messages up (JSON)' } }, (socket, request) => {
      const auth = request.auth;
      if (auth?.via !== 'key') {
        socket.close(4001, 'this route takes an agent API key');
        return;
      }
      this.attach(this.agentFor(request, auth), auth.keyId, socket);
    });
  }
}
