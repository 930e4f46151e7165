// What a run throws when it was asked to stop (Ctrl-C, SIGTERM): not a failure, and nothing half done is
// left under a real name.
export class InterruptedError extends Error {
  override name = 'InterruptedError';

  constructor(message = 'interrupted') {
    super(message);
  }
}

/** A promise that rejects with InterruptedError when `signal` aborts (never, without one). */
export function whenAborted(signal: AbortSignal | undefined): Promise<never> {
  const aborted = new Promise<never>((_, reject) => {
    if (signal?.aborted) reject(new InterruptedError());
    signal?.addEventListener('abort', () => reject(new InterruptedError()), { once: true });
  });
  aborted.catch(() => {});
  return aborted;
}
