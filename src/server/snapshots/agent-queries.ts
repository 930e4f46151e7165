// Questions for agents, answered asynchronously: the server cannot read a repository (it has no
// passphrase), so the dashboard's snapshot browser asks an agent that can. A question travels like any
// message for an agent (an `agent.message` event, reaching whichever server holds its connection); the
// answer comes back on that connection. If this server asked, the waiting request gets it at once;
// otherwise it goes through the event log to the server that asked.
import crypto from 'node:crypto';
import type { DestinationRef, FromAgent, RepoQuery } from '../../agent/protocol.ts';
import type { AgentHub } from '../agents/hub.ts';
import type { ServerContext } from '../context.ts';
import type { ServerEvent } from '../events/event-log.ts';
import { HttpError } from '../http-error.ts';

type Answer = Extract<FromAgent, { type: 'answer' }>;

interface Pending {
  readonly agentId: string;
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: Error) => void;
  readonly timer: NodeJS.Timeout;
}

const ANSWER_EVENT = 'agent.answer';

export class AgentQueries {
  private readonly ctx: ServerContext;
  private readonly pending = new Map<string, Pending>();
  private readonly unsubscribe: () => void;

  constructor(ctx: ServerContext, hub: AgentHub) {
    this.ctx = ctx;
    hub.onAnswer = (agentId, answer) => this.receive(agentId, answer);
    this.unsubscribe = ctx.events.subscribe((event) => this.onEvent(event));
  }

  stop(): void {
    this.unsubscribe();
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new HttpError(503, 'the server is shutting down'));
      this.pending.delete(id);
    }
  }

  /** Asks the agent; rejects with a message for the dashboard if it is offline, fails, or does not answer in time. */
  async ask(agent: { id: string; hostname: string; status: string }, destinations: readonly DestinationRef[], query: RepoQuery, timeoutMs: number): Promise<unknown> {
    if (agent.status !== 'online') throw new HttpError(409, `agent ${agent.hostname} is offline; snapshots are read through an agent with the passphrase: choose an online one`);
    const id = crypto.randomUUID();
    const answer = new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new HttpError(504, `agent ${agent.hostname} did not answer within ${Math.round(timeoutMs / 1000)} s; it may be busy, or older than the server (update it)`));
      }, timeoutMs);
      this.pending.set(id, { agentId: agent.id, resolve, reject, timer });
    });
    await this.ctx.events.append({ agentId: agent.id, type: 'agent.message', data: { type: 'query', id, destinations, query } });
    return answer;
  }

  /** An answer arrived on a connection this server holds. */
  async receive(agentId: string, answer: Answer): Promise<void> {
    if (typeof answer.id !== 'string') return;
    if (this.settle(agentId, answer)) return;
    // Asked by another server: it hears of it through the event log.
    await this.ctx.events.append({ type: ANSWER_EVENT, data: { agentId, id: answer.id, result: answer.result, error: answer.error } });
  }

  private onEvent(event: ServerEvent): void {
    if (event.type !== ANSWER_EVENT) return;
    const data = event.data as Answer & { agentId: string };
    if (this.settle(data.agentId, data)) {
      // Read by the server that asked: nobody else needs it (answers can be large).
      void this.ctx.db.deleteFrom('events').where('id', '=', event.id).execute().catch(() => {});
    }
  }

  /** Hands the answer to the waiting request; false if none here is waiting for it from that agent. */
  private settle(agentId: string, answer: Pick<Answer, 'id' | 'result' | 'error'>): boolean {
    const p = this.pending.get(answer.id);
    // Only the agent asked may answer: another agent of the same user cannot slip in a listing.
    if (!p || p.agentId !== agentId) return false;
    this.pending.delete(answer.id);
    clearTimeout(p.timer);
    if (answer.error !== undefined) p.reject(new HttpError(502, `agent: ${String(answer.error).slice(0, 2000)}`));
    else p.resolve(answer.result);
    return true;
  }
}
