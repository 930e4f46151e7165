// Hooks: commands a plan runs around its backup — before, after (always, once `before` ran), on success,
// on failure. Each runs with /bin/sh -c in its own process group, under a time limit (default 5 min),
// with the job's details in COFFER_* environment variables and without the repository passphrase. Its
// output goes to the run log (the last 64 KiB); a failure names the hook, its exit status and the last
// line it wrote to stderr.
//
// Interface:
//   runHook(name, hook, context, { signal?, log? }) → Promise<void>; rejects with HookError
//   hookEnvironment(name, context) → the COFFER_* variables a hook sees
import { spawn } from 'node:child_process';
import { durationMs, type HookConfig } from '../config/automation.ts';
import { redactString } from '../jobs/redact.ts';
import { childEnvironment } from './child-env.ts';

export type HookName = 'before' | 'after' | 'onSuccess' | 'onFailure';

export const DEFAULT_HOOK_TIMEOUT_MS = 5 * 60_000;
const OUTPUT_TAIL_BYTES = 64 * 1024;

/** What a hook is told about the job it belongs to. */
export interface HookContext {
  readonly plan: string;
  /** The daemon's job number, or a fleet server's job id. */
  readonly jobId: number | string;
  readonly run: number;
  /** after / onSuccess / onFailure: how the backup ended (completed, failed, cancelled, interrupted). */
  readonly status?: string;
  /** onFailure / after a failure: why (already free of secrets). */
  readonly error?: string;
  readonly snapshotId?: string;
  /** The plan's destinations, credentials cut out. */
  readonly repos: readonly string[];
  readonly logFile?: string;
}

export interface HookLog {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
}

export class HookError extends Error {
  override name = 'HookError';
  readonly hook: HookName;

  constructor(hook: HookName, message: string) {
    super(message);
    this.hook = hook;
  }
}

export function hookEnvironment(name: HookName, context: HookContext): Record<string, string> {
  return {
    COFFER_HOOK: name,
    COFFER_PLAN: context.plan,
    COFFER_JOB_ID: String(context.jobId),
    COFFER_RUN: String(context.run),
    COFFER_REPOS: context.repos.map(redactString).join('\n'),
    ...(context.status ? { COFFER_STATUS: context.status } : {}),
    ...(context.error ? { COFFER_ERROR: redactString(context.error) } : {}),
    ...(context.snapshotId ? { COFFER_SNAPSHOT_ID: context.snapshotId } : {}),
    ...(context.logFile ? { COFFER_LOG_FILE: context.logFile } : {}),
  };
}

/** Keeps the last `limit` bytes of a stream of text. */
class Tail {
  private text = '';
  add(chunk: Buffer): void {
    this.text = (this.text + chunk.toString('utf8')).slice(-OUTPUT_TAIL_BYTES);
  }
  get value(): string {
    return this.text;
  }
}

export function runHook(name: HookName, hook: HookConfig, context: HookContext, options: { signal?: AbortSignal; log?: HookLog } = {}): Promise<void> {
  const timeoutMs = durationMs(hook.timeout, DEFAULT_HOOK_TIMEOUT_MS);
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', hook.command], {
      env: childEnvironment(hookEnvironment(name, context)),
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group, so a time limit or a cancel stops whatever the hook started too.
      detached: true,
    });
    const stdout = new Tail();
    const stderr = new Tail();
    child.stdout.on('data', (d: Buffer) => stdout.add(d));
    child.stderr.on('data', (d: Buffer) => stderr.add(d));
    let stopped: string | undefined;
    const stop = (why: string): void => {
      stopped ??= why;
      try {
        process.kill(-child.pid!, 'SIGTERM');
        setTimeout(() => {
          try {
            process.kill(-child.pid!, 'SIGKILL');
          } catch {
            // Already gone.
          }
        }, 5_000).unref();
      } catch {
        // Already gone.
      }
    };
    const timer = setTimeout(() => stop(`it ran longer than its time limit of ${Math.round(timeoutMs / 1000)} s`), timeoutMs);
    const onAbort = (): void => stop('the job was stopped');
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const finish = (err?: HookError): void => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      const output = `${stdout.value}${stderr.value}`.trim();
      if (output) options.log?.info(`hook ${name} output`, { output: redactString(output) });
      if (err) reject(err);
      else resolve();
    };
    child.once('error', (err) => finish(new HookError(name, `the ${name} hook could not be started: ${err.message}`)));
    child.once('close', (code, signal) => {
      if (stopped) return finish(new HookError(name, `the ${name} hook was stopped: ${stopped}`));
      if (code === 0) return finish();
      const lastLine = stderr.value.trim().split('\n').at(-1);
      const status = code !== null ? `exit ${code}` : `killed by ${signal}`;
      finish(new HookError(name, `the ${name} hook failed (${status})${lastLine ? `: ${redactString(lastLine).slice(0, 300)}` : ''}`));
    });
  });
}
