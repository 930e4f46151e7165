// How a job's state looks everywhere: one icon and colour per state, and the words for it. A pending job
// on its second attempt or later is shown as retrying.
import { Ban, CheckCircle2, Clock, Loader2, PauseCircle, RefreshCw, RotateCcw, XCircle } from 'lucide-react';
import type { Job } from '../api/types.ts';
import { cn } from '../lib/cn.ts';
import { formatAgo } from '../lib/format.ts';
import { Badge, type Tone } from './ui/badge.tsx';

export type DisplayStatus = Job['status'] | 'retrying';

export function displayStatus(job: Pick<Job, 'status' | 'attempt'>): DisplayStatus {
  return job.status === 'pending' && job.attempt > 1 ? 'retrying' : job.status;
}

const LOOK: Record<DisplayStatus, { label: string; tone: Tone; icon: typeof Clock; spin?: boolean; color: string }> = {
  pending: { label: 'Queued', tone: 'neutral', icon: Clock, color: 'text-slate-500' },
  retrying: { label: 'Retrying', tone: 'amber', icon: RefreshCw, color: 'text-amber-600' },
  running: { label: 'Running', tone: 'blue', icon: Loader2, spin: true, color: 'text-blue-600' },
  paused: { label: 'Paused', tone: 'amber', icon: PauseCircle, color: 'text-amber-600' },
  interrupted: { label: 'Interrupted', tone: 'amber', icon: RotateCcw, color: 'text-amber-600' },
  completed: { label: 'Completed', tone: 'green', icon: CheckCircle2, color: 'text-green-600' },
  failed: { label: 'Failed', tone: 'red', icon: XCircle, color: 'text-red-600' },
  cancelled: { label: 'Cancelled', tone: 'neutral', icon: Ban, color: 'text-slate-500' },
};

export function statusLabel(status: DisplayStatus): string {
  return LOOK[status].label;
}

export function StatusIcon({ status, className }: { readonly status: DisplayStatus; readonly className?: string }) {
  const look = LOOK[status];
  const Icon = look.icon;
  return <Icon className={cn('h-5 w-5 shrink-0', look.color, look.spin && 'animate-spin [animation-duration:2s]', className)} aria-hidden="true" />;
}

export function StatusBadge({ job }: { readonly job: Pick<Job, 'status' | 'attempt' | 'nextAttemptAt'> }) {
  const status = displayStatus(job);
  const look = LOOK[status];
  const title = status === 'retrying' && job.nextAttemptAt ? `attempt ${job.attempt}, ${formatAgo(job.nextAttemptAt)}` : undefined;
  return (
    <Badge tone={look.tone} {...(title ? { title } : {})}>
      <StatusIcon status={status} className="h-3.5 w-3.5" />
      {look.label}
      {status === 'retrying' ? <span className="num">#{job.attempt}</span> : null}
    </Badge>
  );
}

const STAGES: Record<string, string> = {
  starting: 'Starting',
  scanning: 'Scanning',
  dumping: 'Dumping',
  packing: 'Packing',
  uploading: 'Uploading',
  committing: 'Committing',
  restoring: 'Restoring',
  done: 'Done',
};

export function stageLabel(stage: string | null | undefined): string {
  return stage ? (STAGES[stage] ?? stage) : '';
}

/** What a job is about, in a few words: its plan, or what it restores. */
export function jobTitle(job: Job, planNames?: Map<string, string>): string {
  if (job.kind === 'restore') return `Restore ${job.params.snapshot?.slice(0, 8) ?? ''} → ${job.params.target ?? ''}`;
  return job.params.planName ?? (job.planId ? planNames?.get(job.planId) : undefined) ?? 'Backup';
}
