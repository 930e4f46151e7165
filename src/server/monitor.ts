// Periodic checks any server process may run at any time (each one is a conditional update, so several
// servers running them at once do each thing once): agents gone silent go offline, old events go; the
// fleet adds its own (overdue plans, destination test-writes, jobs whose queue item was lost).
import type { ServerContext } from './context.ts';
import { markSilentAgentsOffline } from './agents/agents.ts';

/** How often old events are deleted (progress events are kept minutes, so this runs often). */
const PRUNE_EVERY_MS = 60_000;

export interface MonitorOptions {
  readonly intervalMs?: number;
  /** Extra checks (overdue plans) run at each tick. */
  readonly checks?: readonly (() => Promise<void>)[];
}

export class Monitor {
  private readonly ctx: ServerContext;
  private readonly intervalMs: number;
  private readonly checks: readonly (() => Promise<void>)[];
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  /** The round that follows the one under way, for those who asked during it. */
  private next: Promise<void> | undefined;
  private lastPrune = 0;

  constructor(ctx: ServerContext, options: MonitorOptions = {}) {
    this.ctx = ctx;
    this.intervalMs = options.intervalMs ?? 5000;
    this.checks = options.checks ?? [];
  }

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await (this.next ?? this.running);
  }

  /**
   * A round of checks that starts after this call. Rounds never overlap: asked for during one, the
   * round runs after it (the one under way may have read the state before the caller changed it, such
   * as a job just paused), and everyone who asked meanwhile shares that next round.
   */
  tick(): Promise<void> {
    if (!this.running) {
      this.running = this.round().finally(() => (this.running = undefined));
      return this.running;
    }
    this.next ??= this.running.then(() => {
      this.next = undefined;
      return this.tick();
    });
    return this.next;
  }

  private async round(): Promise<void> {
    try {
      await markSilentAgentsOffline(this.ctx);
      for (const check of this.checks) await check();
      if (this.ctx.now() - this.lastPrune > PRUNE_EVERY_MS) {
        this.lastPrune = this.ctx.now();
        await this.ctx.events.prune();
      }
    } catch (err) {
      this.ctx.log.error({ err }, 'periodic check failed');
    }
  }
}
