// The event log: every change a dashboard or an agent must hear about (job progress, agent status,
// alerts, commands for agents) is a row in `events`, numbered in the order it was written. Each server
// process reads new rows in order and hands them to its subscribers (SSE dashboards, agent sockets), so
// an event written by one server reaches clients of every server, and a client that reconnects with
// the last id it saw gets what it missed.
import { sql, type Insertable, type Kysely } from 'kysely';
import type { DatabaseKind } from '../db/migrations.ts';
import type { Database, EventsTable } from '../db/schema.ts';

export interface ServerEvent {
  readonly id: number;
  readonly userId: string | null;
  readonly agentId: string | null;
  readonly type: string;
  readonly at: number;
  readonly data: unknown;
}

export interface NewEvent {
  readonly userId?: string | null;
  readonly agentId?: string | null;
  readonly type: string;
  readonly data?: unknown;
}

type Listener = (event: ServerEvent) => void;

interface Queued {
  readonly rows: Insertable<EventsTable>[];
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
}

/** Rows per insert: well below both databases' limits on bound parameters. */
const MAX_BATCH_ROWS = 1000;

const PAGE = 1000;
// Any constant works: it only has to be the same in every server process.
const EVENT_ORDER_LOCK = 7_416_553;

export interface EventLogOptions {
  /** How often other servers' events are looked for (ms). */
  readonly pollMs?: number;
  /** Events older than this are deleted (ms); a client away longer gets a 'reset'. */
  readonly retentionMs?: number;
  /** Progress events, many and soon stale, go sooner (ms). */
  readonly progressRetentionMs?: number;
  readonly now?: () => number;
}

export class EventLog {
  private readonly db: Kysely<Database>;
  private readonly kind: DatabaseKind;
  private readonly listeners = new Set<Listener>();
  private readonly pollMs: number;
  readonly retentionMs: number;
  readonly progressRetentionMs: number;
  private readonly now: () => number;
  private lastId = 0;
  private timer: NodeJS.Timeout | undefined;
  private pumping: Promise<void> | undefined;
  private again = false;
  private readonly queued: Queued[] = [];
  private writing: Promise<void> | undefined;

  constructor(db: Kysely<Database>, kind: DatabaseKind, options: EventLogOptions = {}) {
    this.db = db;
    this.kind = kind;
    this.pollMs = options.pollMs ?? 250;
    this.retentionMs = options.retentionMs ?? 24 * 3600_000;
    this.progressRetentionMs = options.progressRetentionMs ?? 10 * 60_000;
    this.now = options.now ?? Date.now;
  }

  /** Starts delivering events written from now on. */
  async start(): Promise<void> {
    const row = await this.db.selectFrom('events').select((eb) => eb.fn.max('id').as('max')).executeTakeFirst();
    this.lastId = Number(row?.max ?? 0);
    this.timer = setInterval(() => this.poke(), this.pollMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.writing;
    await this.pumping;
  }

  /** The newest id delivered so far (a cursor for a client that starts now). */
  get cursor(): number {
    return this.lastId;
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Writes events; resolves once they are committed. Events appended while a write is in progress go
   * together in the next one (group commit): under load, one transaction carries many events, so the
   * ordering lock is taken once per batch, not once per event.
   */
  append(events: NewEvent | readonly NewEvent[]): Promise<void> {
    const list = Array.isArray(events) ? events : [events as NewEvent];
    if (list.length === 0) return Promise.resolve();
    const at = this.now();
    const rows = list.map((e) => ({ user_id: e.userId ?? null, agent_id: e.agentId ?? null, type: e.type, data: JSON.stringify(e.data ?? {}), at }));
    return new Promise((resolve, reject) => {
      this.queued.push({ rows, resolve, reject });
      this.flush();
    });
  }

  private flush(): void {
    if (this.writing) return;
    this.writing = (async () => {
      while (this.queued.length > 0) {
        const batch: Queued[] = [];
        let size = 0;
        while (this.queued.length > 0 && size < MAX_BATCH_ROWS) {
          const next = this.queued.shift()!;
          batch.push(next);
          size += next.rows.length;
        }
        try {
          await this.write(batch.flatMap((b) => b.rows));
          for (const b of batch) b.resolve();
        } catch (err) {
          for (const b of batch) b.reject(err as Error);
        }
        this.poke();
      }
    })().finally(() => {
      this.writing = undefined;
      // Appended after the loop's last look and before this: written now, not with some later event.
      if (this.queued.length > 0) this.flush();
    });
  }

  private async write(rows: Insertable<EventsTable>[]): Promise<void> {
    if (this.kind === 'postgres') {
      // Ids come from a sequence, and two transactions can commit in the opposite order of their ids:
      // a reader that saw id 8 would then never see 7. Writing under one lock makes commit order id order.
      await this.db.transaction().execute(async (trx) => {
        await sql`select pg_advisory_xact_lock(${EVENT_ORDER_LOCK})`.execute(trx);
        await trx.insertInto('events').values(rows).execute();
      });
    } else {
      await this.db.insertInto('events').values(rows).execute();
    }
  }

  /** Reads and delivers what is new; calls while a read runs make it read once more. */
  poke(): void {
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = (async () => {
      do {
        this.again = false;
        try {
          await this.deliverNew();
        } catch {
          // The database is unreachable for a moment: the next tick tries again from the same cursor.
        }
      } while (this.again);
    })().finally(() => (this.pumping = undefined));
  }

  private async deliverNew(): Promise<void> {
    for (;;) {
      const rows = await this.db.selectFrom('events').selectAll().where('id', '>', this.lastId).orderBy('id').limit(PAGE).execute();
      for (const row of rows) {
        this.lastId = Number(row.id);
        const event = toEvent(row);
        for (const listener of this.listeners) {
          try {
            listener(event);
          } catch {
            // One broken subscriber must not stop the others.
          }
        }
      }
      if (rows.length < PAGE) return;
    }
  }

  /**
   * Events after `afterId` that `filter` lets through, oldest first, up to the current cursor.
   * `complete` is false when events after `afterId` were already deleted (the client missed some).
   */
  async since(afterId: number, where: { userId?: string; agentId?: string }, limit = 10_000): Promise<{ events: ServerEvent[]; complete: boolean }> {
    let query = this.db.selectFrom('events').selectAll().where('id', '>', afterId).orderBy('id').limit(limit);
    if (where.userId !== undefined) query = query.where('user_id', '=', where.userId);
    if (where.agentId !== undefined) query = query.where('agent_id', '=', where.agentId);
    const rows = await query.execute();
    const oldest = await this.db.selectFrom('events').select((eb) => eb.fn.min('id').as('min')).executeTakeFirst();
    const complete = afterId === 0 || oldest?.min == null || Number(oldest.min) <= afterId + 1;
    return { events: rows.map(toEvent), complete };
  }

  /** Deletes events past their retention time; any server may do it, at any time. */
  async prune(): Promise<number> {
    const now = this.now();
    // A scaled-out run's shard status is progress too: only the newest matters.
    const progress = await this.db.deleteFrom('events').where('type', 'in', ['job.progress', 'job.shards']).where('at', '<', now - this.progressRetentionMs).executeTakeFirst();
    const rest = await this.db.deleteFrom('events').where('at', '<', now - this.retentionMs).executeTakeFirst();
    return Number(progress.numDeletedRows) + Number(rest.numDeletedRows);
  }
}

function toEvent(row: { id: number; user_id: string | null; agent_id: string | null; type: string; data: string; at: number }): ServerEvent {
  return { id: Number(row.id), userId: row.user_id, agentId: row.agent_id, type: row.type, at: Number(row.at), data: JSON.parse(row.data) };
}
