// The hooks of one run of a plan, in one order for the daemon's job runner and the fleet agent: before
// (its failure fails the run), then, once the run has ended, onSuccess (completed) or onFailure (failed,
// or failed with a retry to come), then after (always: it may have to undo what before did). An end
// hook's failure is logged; the run's outcome stands.
import type { HooksConfig } from '../config/automation.ts';
import { runHook, type HookContext, type HookLog, type HookName } from './hooks.ts';

/** The end hooks of a run that ended so, in order. */
export function endHookNames(status: string): HookName[] {
  if (status === 'completed') return ['onSuccess', 'after'];
  if (status === 'failed' || status === 'retrying') return ['onFailure', 'after'];
  return ['after'];
}

export interface PlanHooksOptions {
  readonly hooks: HooksConfig | undefined;
  readonly context: HookContext;
  /** The run's log: which hook runs, its output, and an end hook's failure. */
  readonly log: HookLog;
  /** Also told of an end hook's failure (the daemon's own log, say). */
  readonly onEndHookFailed?: (err: Error) => void;
}

export class PlanHooks {
  private readonly options: PlanHooksOptions;

  constructor(options: PlanHooksOptions) {
    this.options = options;
  }

  private async run(name: HookName, signal: AbortSignal | undefined, extra: Partial<HookContext>): Promise<void> {
    const hook = this.options.hooks?.[name];
    if (!hook) return;
    this.options.log.info(`running the ${name} hook`);
    await runHook(name, hook, { ...this.options.context, ...extra }, { ...(signal ? { signal } : {}), log: this.options.log });
  }

  /** The before hook; stopped by `signal`. Rejects with HookError: the run fails. */
  before(signal?: AbortSignal): Promise<void> {
    return this.run('before', signal, {});
  }

  /** The end hooks of a run that ended with `status` (and why, or the snapshot it made). Never rejects. */
  async end(status: string, extra: { readonly error?: string; readonly snapshotId?: string } = {}): Promise<void> {
    for (const name of endHookNames(status)) {
      try {
        await this.run(name, undefined, { status, ...extra });
      } catch (err) {
        this.options.log.warn((err as Error).message);
        this.options.onEndHookFailed?.(err as Error);
      }
    }
  }
}
