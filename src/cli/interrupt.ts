// Ctrl-C and SIGTERM: the first one asks the running command to stop cleanly (no half-written object
// or file is left under its real name); a second Ctrl-C exits at once.
import { EXIT_INTERRUPTED } from './exit-codes.ts';
import { printNotice } from './output.ts';

// One per process, as the signals are: the stores a command opens (repo-options.ts) hear it too, so a
// transfer waiting for its share of a low --limit-upload stops at once instead of sitting it out.
const interrupted = new AbortController();

/** Aborted by the first Ctrl-C or SIGTERM while a command listens for them (interruptSignal). */
export const interruption: AbortSignal = interrupted.signal;

export function interruptSignal(): { signal: AbortSignal; dispose: () => void } {
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupted.signal.aborted) process.exit(EXIT_INTERRUPTED);
    printNotice(signal === 'SIGTERM' ? 'terminated: stopping cleanly' : 'interrupting: stopping cleanly (Ctrl-C again to quit at once)');
    interrupted.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: interrupted.signal,
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
