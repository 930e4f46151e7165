// Ctrl-C: the first one asks the running command to stop cleanly (no half-written object is left);
// a second one exits at once.
import { EXIT_INTERRUPTED } from './exit-codes.ts';
import { printNotice } from './output.ts';

export function interruptSignal(): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const onSignal = (): void => {
    if (controller.signal.aborted) process.exit(EXIT_INTERRUPTED);
    printNotice('interrupting: finishing the objects being written (Ctrl-C again to quit now)');
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
