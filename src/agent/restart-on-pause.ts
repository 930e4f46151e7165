// A run the pause gate cannot reach into — a scaled-out one, whose shards run on other agents — is
// paused by stopping it: it stops when its gate closes and runs again when the gate opens, within the
// same task (its slot, its before-hook, its log), and the engine reuses what the stopped run stored.
import { InterruptedError } from '../engine/interrupted.ts';
import type { BackupProgress } from '../engine/backup/progress.ts';
import type { TaskControl } from '../daemon/task-manager.ts';
import type { BackupExecution } from './scaled-run.ts';

export interface RestartOptions {
  /** The progress shown before the first start (the gate may be closed already). */
  readonly beforeStart: (elapsedMs: number) => BackupProgress;
  /** A run was stopped by a pause; it starts again on resume. */
  readonly onStopped: () => void;
}

export function stoppedWhilePaused(start: (signal: AbortSignal) => BackupExecution, control: TaskControl, options: RestartOptions): BackupExecution {
  const began = Date.now();
  let current: BackupExecution | undefined;
  return {
    progress: () => current?.progress() ?? options.beforeStart(Date.now() - began),
    async execute() {
      for (;;) {
        await control.gate.wait(control.signal);
        if (control.signal.aborted) throw new InterruptedError();
        const paused = new AbortController();
        const stopWhenPaused = control.gate.onChange((closed) => {
          if (closed) paused.abort();
        });
        current = start(AbortSignal.any([control.signal, paused.signal]));
        try {
          return await current.execute();
        } catch (err) {
          if (control.signal.aborted || !paused.signal.aborted) throw err;
          options.onStopped();
        } finally {
          stopWhenPaused();
        }
      }
    },
  };
}
