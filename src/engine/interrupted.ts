// What a run throws when it was asked to stop (Ctrl-C, SIGTERM): not a failure, and nothing half done is
// left under a real name.
export class InterruptedError extends Error {
  override name = 'InterruptedError';

  constructor(message = 'interrupted') {
    super(message);
  }
}

/**
 * `work`, or InterruptedError as soon as `signal` aborts (or what `reason` makes of the abort: a backup
 * stops with the error that stopped it). Nothing of `work` stays reachable from the signal once it has
 * settled: a race with one promise that never settles would add a reaction to it on every call, keeping
 * each result alive until the run ends (a restore waits once per directory, so it kept every directory's
 * entries: some 30 MiB of old space for a 78.6k-file tree; a streamed backup waits once per block).
 */
export function untilAborted<T>(
  work: Promise<T>,
  signal: AbortSignal | undefined,
  reason: (signal: AbortSignal) => unknown = () => new InterruptedError(),
): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) {
    work.catch(() => {});
    return Promise.reject(reason(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(reason(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
