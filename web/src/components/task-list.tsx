// The active tasks panel: every queued, running, paused, retrying and recently finished job with its
// state, a progress bar, its stage, and pause/resume/cancel. Rows keep their height and numbers their
// width while progress streams in, so nothing moves under the pointer.
import { Link } from '@tanstack/react-router';
import { Pause, Play, Square } from 'lucide-react';
import { errorMessage } from '../api/client.ts';
import { liveProgress } from '../api/events.ts';
import { useAgents, useJobControl, usePlans } from '../api/queries.ts';
import type { Job } from '../api/types.ts';
import { formatAgo, formatBytes, formatClock, formatCount, formatSpeed, percent } from '../lib/format.ts';
import { displayStatus, jobTitle, stageLabel, StatusBadge, StatusIcon } from './job-status.tsx';
import { Button } from './ui/button.tsx';
import { ProgressBar } from './ui/progress.tsx';
import { useToast } from './ui/toast.tsx';

const LIVE = new Set(['running', 'paused']);
const CANCELLABLE = new Set(['pending', 'running', 'paused', 'interrupted']);

function barTone(job: Job): 'green' | 'blue' | 'amber' | 'red' | 'slate' {
  switch (displayStatus(job)) {
    case 'running':
      return 'blue';
    case 'completed':
      return 'green';
    case 'failed':
      return 'red';
    case 'paused':
    case 'interrupted':
    case 'retrying':
      return 'amber';
    default:
      return 'slate';
  }
}

export function JobControls({ job, title }: { readonly job: Job; readonly title: string }) {
  const control = useJobControl();
  const toast = useToast();
  const act = (action: 'pause' | 'resume' | 'cancel'): void =>
    control.mutate(
      { id: job.id, action },
      {
        onSuccess: () => toast.ok(`${action === 'pause' ? 'Pausing' : action === 'resume' ? 'Resuming' : 'Cancelled'} ${title}`),
        onError: (err) => toast.error(`Could not ${action} ${title}: ${errorMessage(err)}`),
      },
    );
  const pending = control.isPending ? control.variables?.action : undefined;
  return (
    <div className="flex items-center gap-1">
      {job.status === 'running' ? (
        <Button size="sm" variant="secondary" aria-label={`Pause ${title}`} busy={pending === 'pause'} onClick={() => act('pause')}>
          <Pause className="h-3.5 w-3.5" aria-hidden="true" />
          <span className="hidden sm:inline">Pause</span>
        </Button>
      ) : null}
      {job.status === 'paused' ? (
        <Button size="sm" variant="secondary" aria-label={`Resume ${title}`} busy={pending === 'resume'} onClick={() => act('resume')}>
          <Play className="h-3.5 w-3.5" aria-hidden="true" />
          <span className="hidden sm:inline">Resume</span>
        </Button>
      ) : null}
      {CANCELLABLE.has(job.status) ? (
        <Button size="sm" variant="danger-outline" aria-label={`Cancel ${title}`} busy={pending === 'cancel'} onClick={() => act('cancel')}>
          <Square className="h-3.5 w-3.5" aria-hidden="true" />
          <span className="hidden sm:inline">Cancel</span>
        </Button>
      ) : null}
    </div>
  );
}

function TaskRow({ job, agentName, planNames }: { readonly job: Job; readonly agentName: string; readonly planNames: Map<string, string> }) {
  const title = jobTitle(job, planNames);
  const status = displayStatus(job);
  const live = LIVE.has(job.status);
  const progress = live ? liveProgress.get(job.id) : undefined;
  const known = job.bytesTotal > 0 && (progress?.totalsKnown ?? true);
  const of = known && progress?.totalsEstimated ? 'of about' : 'of';
  const pct = job.status === 'completed' ? 100 : percent(job.bytesDone, job.bytesTotal);
  const when = job.finishedAt ?? job.startedAt ?? job.requestedAt;
  let detail: string;
  if (job.status === 'failed') detail = job.error ?? 'failed';
  else if (status === 'retrying') detail = `attempt ${job.attempt} ${job.nextAttemptAt ? formatAgo(job.nextAttemptAt) : 'soon'}${job.error ? ` · last error: ${job.error}` : ''}`;
  else if (job.status === 'interrupted') detail = job.error ?? 'waiting for its agent to come back';
  else if (job.status === 'pending') detail = 'waiting for a free slot on its agent';
  else detail = `${formatCount(job.filesDone)}${job.filesTotal ? ` ${of} ${formatCount(job.filesTotal)}` : ''} files`;
  return (
    <li className="flex flex-col gap-2 px-4 py-3 sm:flex-row sm:items-center sm:gap-4" aria-label={`${title}: ${status}`}>
      <div className="flex min-w-0 flex-1 items-start gap-3">
        <StatusIcon status={status} className="mt-0.5" />
        <div className="min-w-0 flex-1">
          <div className="flex flex-wrap items-center gap-x-2 gap-y-1">
            <Link to="/jobs/$jobId" params={{ jobId: job.id }} className="truncate font-medium text-slate-900 hover:underline">
              {title}
            </Link>
            <StatusBadge job={job} />
            {live && job.stage ? <span className="text-xs text-slate-600">{stageLabel(job.stage)}</span> : null}
          </div>
          <p className="truncate text-xs text-slate-600">
            {agentName} · {job.kind} · {job.trigger} · {formatAgo(when)}
          </p>
          <div className="mt-2 flex items-center gap-3">
            <ProgressBar value={pct} tone={barTone(job)} indeterminate={live && !known} label={`${title} progress`} valueText={known || !live ? `${Math.round(pct)}%, ${formatBytes(job.bytesDone)} ${of} ${formatBytes(job.bytesTotal)}` : `${formatBytes(job.bytesDone)} so far`} />
            <span className="num w-12 shrink-0 text-right text-xs font-medium text-slate-700">{known || !live ? `${Math.round(pct)}%` : ''}</span>
          </div>
          <div className="mt-1 flex flex-wrap justify-between gap-x-4 text-xs text-slate-600">
            <span className={job.status === 'failed' ? 'truncate text-red-700' : 'truncate'}>{detail}</span>
            <span className="num whitespace-nowrap">
              {formatBytes(job.bytesDone)}
              {job.bytesTotal ? ` / ${formatBytes(job.bytesTotal)}` : ''}
              {progress && job.status === 'running' ? ` · ${formatSpeed(progress.bytesPerSecond)} · ETA ${formatClock(progress.etaSeconds)}` : ''}
            </span>
          </div>
        </div>
      </div>
      <div className="flex justify-end sm:w-52">
        <JobControls job={job} title={title} />
      </div>
    </li>
  );
}

export function TaskList({ jobs, emptyText }: { readonly jobs: readonly Job[]; readonly emptyText: string }) {
  const agents = useAgents();
  const plans = usePlans();
  const agentNames = new Map(agents.data?.map((a) => [a.id, a.hostname]));
  const planNames = new Map(plans.data?.map((p) => [p.id, p.name]));
  if (jobs.length === 0) return <p className="px-4 py-8 text-center text-sm text-slate-600">{emptyText}</p>;
  return (
    <ul className="divide-y divide-slate-100">
      {jobs.map((job) => (
        <TaskRow key={job.id} job={job} agentName={agentNames.get(job.agentId) ?? 'unknown agent'} planNames={planNames} />
      ))}
    </ul>
  );
}
