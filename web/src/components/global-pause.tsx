// The global pause: running jobs pause, and nothing new starts until it is lifted.
import { PauseCircle, PlayCircle } from 'lucide-react';
import { errorMessage } from '../api/client.ts';
import { useGlobalPause, usePauseState } from '../api/queries.ts';
import { formatAgo } from '../lib/format.ts';
import { Button } from './ui/button.tsx';
import { useToast } from './ui/toast.tsx';

export function GlobalPauseButton() {
  const state = usePauseState();
  const change = useGlobalPause();
  const toast = useToast();
  const paused = state.data?.paused ?? false;
  return (
    <Button
      variant={paused ? 'primary' : 'secondary'}
      busy={change.isPending}
      disabled={!state.data}
      aria-pressed={paused}
      onClick={() =>
        change.mutate(!paused, {
          onSuccess: (s) => toast.ok(s.paused ? 'Everything is paused: running jobs pause, new ones wait.' : 'Resumed: paused jobs continue and queued ones start.'),
          onError: (err) => toast.error(`Could not ${paused ? 'resume' : 'pause'}: ${errorMessage(err)}`),
        })
      }
    >
      {paused ? <PlayCircle className="h-4 w-4" aria-hidden="true" /> : <PauseCircle className="h-4 w-4" aria-hidden="true" />}
      {paused ? 'Resume all' : 'Pause all'}
    </Button>
  );
}

export function GlobalPauseBanner() {
  const state = usePauseState();
  if (!state.data?.paused) return null;
  return (
    <div role="status" className="mb-4 flex items-center gap-2 rounded-md border border-amber-300 bg-amber-50 px-3 py-2 text-sm text-amber-900">
      <PauseCircle className="h-4 w-4 shrink-0" aria-hidden="true" />
      <span>
        All jobs are paused{state.data.pausedAt ? ` (since ${formatAgo(state.data.pausedAt)})` : ''}. Scheduled and new jobs wait in the queue until you resume.
      </span>
    </div>
  );
}
