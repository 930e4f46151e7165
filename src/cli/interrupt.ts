// Ctrl-C and SIGTERM: the first one asks the running command to stop cleanly (no half-written object
// or file is left under its real name); a second Ctrl-C exits at once.
import { EXIT_INTERRUPTED } from './exit-codes.ts';
import { printNotice } from './output.ts';

export function interruptSignal(): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => {
    if (controller.signal.aborted) process.exit(EXIT_INTERRUPTED);
    printNotice(signal === 'SIGTERM' ? 'terminated: stopping cleanly' : 'interrupting: stopping cleanly (Ctrl-C again to quit at once)');
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
