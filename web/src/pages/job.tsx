// One job, live: a bar per destination (speed, ETA, the fastest marked), files and bytes done of the
// total, the current file and the 15 before it, the last directory finished and the next one queued,
// the agent's state, and the log as it streams. Every box keeps its size while numbers change.
import { getRouteApi, Link } from '@tanstack/react-router';
import { Archive, Folder, FolderClock, Gauge, Layers, Server, Trophy } from 'lucide-react';
import { useEffect, useRef } from 'react';
import { useAgents, useJob, useJobLog, useJobShards } from '../api/queries.ts';
import type { DestinationProgress, DestinationRef, JobDetail, LogLine, RetentionReport } from '../api/types.ts';
import { displayStatus, jobTitle, stageLabel, StatusBadge } from '../components/job-status.tsx';
import { JobControls } from '../components/task-list.tsx';
import { Badge } from '../components/ui/badge.tsx';
import { Card, CardBody, CardHeader } from '../components/ui/card.tsx';
import { PageHeader } from '../components/ui/page.tsx';
import { ProgressBar } from '../components/ui/progress.tsx';
import { ErrorBox, Loading } from '../components/ui/states.tsx';
import { cn } from '../lib/cn.ts';
import { formatAgo, formatBytes, formatClock, formatCount, formatDuration, formatSpeed, formatTime, percent, shortId } from '../lib/format.ts';

const route = getRouteApi('/app/jobs/$jobId');
const RECENT = 15;

/** The destination a progress entry is about: the agent reports store locations, the job has names. */
export function destinationName(location: string, refs: readonly DestinationRef[] | undefined): string {
  const ref = refs?.find((r) => location === r.location || location.startsWith(`${r.name} (`) || location.endsWith(r.location));
  return ref?.name ?? location;
}

function fastestOf(list: readonly DestinationProgress[]): string | undefined {
  if (list.length < 2) return undefined;
  return list.filter((d) => d.state !== 'detached' && d.speed > 0).sort((a, b) => b.speed - a.speed)[0]?.location;
}

function Stat({ label, value, sub }: { readonly label: string; readonly value: string; readonly sub?: string }) {
  return (
    <div className="min-w-0">
      <dt className="text-xs font-medium text-slate-600">{label}</dt>
      <dd className="num truncate text-lg font-semibold text-slate-900">{value}</dd>
      <dd className="num h-4 truncate text-xs text-slate-600">{sub ?? ''}</dd>
    </div>
  );
}

function Overall({ job }: { readonly job: JobDetail }) {
  const p = job.progress;
  const live = job.status === 'running' || job.status === 'paused';
  const known = (p?.totalsKnown ?? true) && job.bytesTotal > 0;
  // 'about' while the totals are the parent snapshot's; 'so far' once the walk has passed them.
  const of = live && known && p?.totalsEstimated ? 'of about' : 'of';
  const pct = job.status === 'completed' ? 100 : percent(job.bytesDone, job.bytesTotal);
  const elapsed = p?.elapsedMs ?? (job.startedAt ? (job.finishedAt ?? Date.now()) - job.startedAt : null);
  return (
    <Card aria-labelledby="overall-title">
      <CardHeader id="overall-title" title="Progress" actions={live && job.stage ? <Badge tone="blue">{stageLabel(job.stage)}</Badge> : undefined} />
      <CardBody className="space-y-4">
        <div className="flex items-center gap-3">
          <ProgressBar className="h-3" value={pct} indeterminate={live && !known} tone={job.status === 'failed' ? 'red' : job.status === 'completed' ? 'green' : job.status === 'running' ? 'blue' : 'amber'} label="Overall progress" valueText={`${formatBytes(job.bytesDone)} ${of} ${formatBytes(job.bytesTotal)}`} />
          <span className="num w-14 shrink-0 text-right text-sm font-semibold">{known || !live ? `${Math.round(pct)}%` : '…'}</span>
        </div>
        <dl className="grid grid-cols-2 gap-4 sm:grid-cols-4">
          <Stat label="Files" value={`${formatCount(job.filesDone)}`} sub={job.filesTotal ? `${of} ${formatCount(job.filesTotal)}${known ? '' : ' so far'}` : undefined} />
          <Stat label="Data" value={formatBytes(job.bytesDone)} sub={job.bytesTotal ? `${of} ${formatBytes(job.bytesTotal)}${known ? '' : ' so far'}` : undefined} />
          <Stat label="Speed" value={job.status === 'running' ? formatSpeed(p?.bytesPerSecond) : '–'} sub={`elapsed ${formatClock(elapsed !== null ? elapsed / 1000 : null)}`} />
          <Stat label="Time left" value={job.status === 'running' ? formatClock(p?.etaSeconds) : '–'} sub={job.kind === 'backup' && job.status === 'completed' ? `${formatBytes(job.bytesAdded)} new` : undefined} />
        </dl>
      </CardBody>
    </Card>
  );
}

function Destinations({ job }: { readonly job: JobDetail }) {
  const list = job.progress?.destinations ?? [];
  const refs = job.params.destinations;
  const best = fastestOf(list);
  const finished = !(job.status === 'running' || job.status === 'paused');
  return (
    <Card aria-labelledby="destinations-title">
      <CardHeader id="destinations-title" title="Destinations" description={list.length > 1 ? 'Each destination uploads at its own pace; the backup is complete on each when its bar is full.' : undefined} />
      <CardBody>
        {list.length === 0 && job.destinations.length === 0 ? <p className="text-sm text-slate-600">No upload has started yet.</p> : null}
        <ul className="space-y-4">
          {list.map((d) => {
            const total = d.bytesDone + d.bytesQueued;
            const pct = d.state === 'done' ? 100 : total > 0 ? percent(d.bytesDone, total) : 0;
            const name = destinationName(d.location, refs);
            const result = job.destinations.find((r) => r.name === name);
            return (
              <li key={d.location} aria-label={`Destination ${name}`}>
                <div className="mb-1 flex flex-wrap items-center justify-between gap-2">
                  <span className="flex min-w-0 items-center gap-2 font-medium">
                    <span className="truncate">{name}</span>
                    {d.location === best && !finished ? (
                      <Badge tone="violet">
                        <Trophy className="h-3 w-3" aria-hidden="true" />
                        fastest
                      </Badge>
                    ) : null}
                    <Badge tone={d.state === 'detached' ? 'red' : d.state === 'done' ? 'green' : d.state === 'retrying' ? 'amber' : 'blue'}>{finished && result ? result.status : d.state}</Badge>
                  </span>
                  <span className="num text-sm text-slate-700">
                    {formatSpeed(finished ? 0 : d.speed)} · ETA {finished ? '–' : formatClock(d.etaSeconds)}
                  </span>
                </div>
                <ProgressBar value={pct} tone={d.state === 'detached' ? 'red' : d.state === 'done' ? 'green' : 'blue'} label={`Upload to ${name}`} valueText={`${formatBytes(d.bytesDone)} of ${formatBytes(total)} uploaded`} />
                <div className="num mt-1 flex justify-between text-xs text-slate-600">
                  <span>
                    {formatBytes(d.bytesDone)} of {formatBytes(total)} · {formatCount(d.objectsDone)} of {formatCount(d.objectsDone + d.objectsQueued)} objects
                  </span>
                  <span>{d.concurrency} at once</span>
                </div>
                {d.error ? <p className="mt-1 text-sm text-red-700">{d.error}</p> : null}
              </li>
            );
          })}
          {list.length === 0
            ? job.destinations.map((r) => (
                <li key={r.destinationId} className="flex items-center justify-between text-sm">
                  <span className="font-medium">{r.name ?? r.destinationId}</span>
                  <Badge tone={r.status === 'completed' ? 'green' : r.status === 'failed' ? 'red' : 'neutral'}>{r.status}</Badge>
                </li>
              ))
            : null}
        </ul>
      </CardBody>
    </Card>
  );
}

function Files({ job }: { readonly job: JobDetail }) {
  const p = job.progress;
  const recent = p?.recentFiles ?? [];
  return (
    <Card aria-labelledby="files-title">
      <CardHeader id="files-title" title="Files" />
      <CardBody className="space-y-3">
        <div>
          <h3 className="text-xs font-medium text-slate-600">Current file</h3>
          <p className="truncate font-mono text-sm" title={p?.currentFile || undefined}>
            {job.status === 'running' && p?.currentFile ? p.currentFile : '–'}
          </p>
        </div>
        <div>
          <h3 className="text-xs font-medium text-slate-600">
            Most recent files <span className="font-normal">(newest first)</span>
          </h3>
          {/* Room for all 15 from the start, so the page below does not move as they arrive. */}
          <ol className="mt-1 min-h-[22.5rem] space-y-0.5 font-mono text-xs text-slate-800" aria-label="Most recent files">
            {recent.slice(0, RECENT).map((f, i) => (
              <li key={`${i}:${f}`} className="truncate leading-6" title={f}>
                {f}
              </li>
            ))}
            {recent.length === 0 ? <li className="font-sans text-slate-600">None yet.</li> : null}
          </ol>
        </div>
      </CardBody>
    </Card>
  );
}

function Directories({ job }: { readonly job: JobDetail }) {
  const last = job.progress?.lastDirectory;
  const next = job.progress?.nextDirectory;
  return (
    <Card aria-labelledby="dirs-title">
      <CardHeader id="dirs-title" title="Directories" />
      <CardBody className="space-y-4">
        <div className="flex gap-3">
          <Folder className="mt-0.5 h-5 w-5 shrink-0 text-slate-500" aria-hidden="true" />
          <div className="min-w-0 flex-1">
            <h3 className="text-xs font-medium text-slate-600">Last completed</h3>
            <p className="truncate font-mono text-sm" title={last?.path}>
              {last?.path ?? '–'}
            </p>
            <p className="num h-4 text-xs text-slate-600">{last ? `${formatDuration(last.durationMs)} · ${formatBytes(last.bytes)} · ${formatCount(last.files)} files · ${formatSpeed(last.durationMs > 0 ? (last.bytes * 1000) / last.durationMs : 0)}` : ''}</p>
          </div>
        </div>
        <div className="flex gap-3">
          <FolderClock className="mt-0.5 h-5 w-5 shrink-0 text-slate-500" aria-hidden="true" />
          <div className="min-w-0 flex-1">
            <h3 className="text-xs font-medium text-slate-600">Next in the queue</h3>
            <p className="truncate font-mono text-sm" title={next?.path}>
              {job.status === 'running' || job.status === 'paused' ? (next?.path ?? '–') : '–'}
            </p>
            <p className="num h-4 text-xs text-slate-600">{next && next.bytes !== undefined ? `${formatBytes(next.bytes)}${next.files !== undefined ? ` · ${formatCount(next.files)} files` : ''}` : next ? 'size not measured yet' : ''}</p>
          </div>
        </div>
      </CardBody>
    </Card>
  );
}

/** One side's retention report in words. */
function retentionText(report: 'due' | RetentionReport): string {
  if (report === 'due') return 'pending: the server applies it next';
  if (report.error !== undefined) return `failed: ${report.error}`;
  return `forgot ${formatCount(report.forgotten)} snapshot${report.forgotten === 1 ? '' : 's'}${report.pruned ? `, prune freed ${formatBytes(report.freedBytes ?? 0)}` : ''}`;
}

/** The plan's retention after the run: by the agent on its own destinations, by the server on its S3 ones. */
function RetentionCard({ job }: { readonly job: JobDetail }) {
  if (job.retention === null && job.serverRetention === null) return null;
  const sides: [string, 'due' | RetentionReport][] = [];
  if (job.retention !== null) sides.push(["Agent's destinations", job.retention]);
  if (job.serverRetention !== null) sides.push(["Server's destinations", job.serverRetention]);
  return (
    <Card aria-labelledby="retention-title">
      <CardHeader id="retention-title" title="Retention" />
      <CardBody>
        <dl className="space-y-2 text-sm">
          {sides.map(([side, report]) => (
            <div key={side}>
              <dt className="text-slate-600">{side}</dt>
              <dd className={cn('break-words', report !== 'due' && report.error !== undefined && 'text-red-800')}>{retentionText(report)}</dd>
            </div>
          ))}
        </dl>
      </CardBody>
    </Card>
  );
}

function AgentCard({ job }: { readonly job: JobDetail }) {
  const agents = useAgents();
  const agent = agents.data?.find((a) => a.id === job.agentId);
  return (
    <Card aria-labelledby="agent-title">
      <CardHeader id="agent-title" title="Agent" />
      <CardBody className="flex items-start gap-3">
        <Server className="mt-0.5 h-5 w-5 shrink-0 text-slate-500" aria-hidden="true" />
        {agent ? (
          <div className="min-w-0 text-sm">
            <p className="flex items-center gap-2 font-medium">
              <span className="truncate">{agent.hostname}</span>
              <Badge tone={agent.status === 'online' ? 'green' : 'red'}>{agent.status}</Badge>
            </p>
            <p className="num text-slate-600">
              last heartbeat {formatAgo(agent.lastHeartbeatAt)} · {agent.running} of {agent.capacity} slots busy
            </p>
            <p className="text-slate-600">
              version {agent.version}
              {agent.outdated ? <span className="text-amber-700"> (older than the server)</span> : null}
            </p>
          </div>
        ) : (
          <p className="text-sm text-slate-600">{agents.isPending ? 'Loading…' : 'This agent was removed.'}</p>
        )}
      </CardBody>
    </Card>
  );
}

/** Waiting shards listed one by one; the rest are summed up. */
const WAITING_SHOWN = 50;
/** A worker silent this long is flagged: it loses its shard at the server's heartbeat timeout. */
const SILENT_MS = 10_000;

/** A scaled-out run: each worker with its shard and how far it got, and the shards waiting with their sizes. */
function Shards({ job }: { readonly job: JobDetail }) {
  const live = job.status === 'running' || job.status === 'paused';
  const shards = useJobShards(job.id, live);
  const s = shards.data;
  const scale = job.params.scaleOut!;
  const workers = scale.label !== undefined ? `the agents with label ${scale.label}` : `${scale.workers} agents`;
  const rest = s ? s.waiting.slice(WAITING_SHOWN) : [];
  return (
    <Card aria-labelledby="shards-title">
      <CardHeader
        id="shards-title"
        title="Workers and shards"
        description={s ? `${s.done} of ${s.total} shards done${s.failed ? `, ${s.failed} failed` : ''} · split for ${workers}` : `Split for ${workers}.`}
      />
      <CardBody className="space-y-4">
        {shards.error ? <ErrorBox error={shards.error} retry={() => void shards.refetch()} /> : null}
        {!s ? <p className="text-sm text-slate-600">{live ? 'The coordinating agent is splitting the sources.' : 'The shards are shown while the job runs.'}</p> : null}
        {s ? (
          <>
            <div>
              <h3 className="text-xs font-medium text-slate-600">Workers</h3>
              <ul className="mt-1 space-y-3" aria-label="Workers">
                {s.running.length === 0 ? <li className="text-sm text-slate-600">No shard is being backed up right now.</li> : null}
                {[...s.running]
                  .sort((a, b) => a.hostname.localeCompare(b.hostname) || a.agentId.localeCompare(b.agentId) || a.index - b.index)
                  .map((r) => (
                    <li key={`${r.agentId}:${r.index}`} aria-label={`Worker ${r.hostname} ${shortId(r.agentId)}, shard ${r.index + 1}`}>
                      <div className="mb-1 flex flex-wrap items-center justify-between gap-2 text-sm">
                        <span className="flex min-w-0 items-center gap-2 font-medium">
                          <Server className="h-4 w-4 shrink-0 text-slate-500" aria-hidden="true" />
                          <span className="truncate">{r.hostname}</span>
                          <span className="num font-mono text-xs text-slate-500">{shortId(r.agentId)}</span>
                          <Badge tone="blue">shard {r.index + 1}</Badge>
                          {r.attempt > 1 ? <Badge tone="amber">attempt {r.attempt}</Badge> : null}
                          {r.silentMs > SILENT_MS ? <Badge tone="red">silent {Math.round(r.silentMs / 1000)} s</Badge> : null}
                        </span>
                        <span className="num text-slate-700">
                          {formatBytes(Math.min(r.bytesDone, r.bytes))} of {formatBytes(r.bytes)} · {formatCount(Math.min(r.filesDone, r.files))} of {formatCount(r.files)} files
                        </span>
                      </div>
                      <ProgressBar value={percent(r.bytesDone, r.bytes)} tone="blue" label={`Shard ${r.index + 1} on ${r.hostname}`} valueText={`${formatBytes(r.bytesDone)} of ${formatBytes(r.bytes)} read`} />
                    </li>
                  ))}
              </ul>
            </div>
            <div>
              <h3 className="text-xs font-medium text-slate-600">
                Waiting <span className="font-normal">({formatCount(s.waiting.length)} shards, {formatBytes(s.waiting.reduce((n, w) => n + w.bytes, 0))})</span>
              </h3>
              <ol className="mt-1 space-y-0.5 text-sm" aria-label="Shards waiting">
                {s.waiting.length === 0 ? <li className="text-slate-600">None.</li> : null}
                {s.waiting.slice(0, WAITING_SHOWN).map((w) => (
                  <li key={w.index} className="num flex items-center justify-between gap-2">
                    <span className="flex items-center gap-2">
                      <Layers className="h-3.5 w-3.5 text-slate-500" aria-hidden="true" />
                      shard {w.index + 1}
                      {w.attempt > 0 ? <Badge tone="amber">tried {w.attempt}×</Badge> : null}
                    </span>
                    <span className="text-slate-700">
                      {formatBytes(w.bytes)} · {formatCount(w.files)} files
                    </span>
                  </li>
                ))}
                {rest.length > 0 ? (
                  <li className="text-slate-600">
                    and {formatCount(rest.length)} more ({formatBytes(rest.reduce((n, w) => n + w.bytes, 0))})
                  </li>
                ) : null}
              </ol>
            </div>
          </>
        ) : null}
      </CardBody>
    </Card>
  );
}

const LEVEL_STYLE: Record<LogLine['level'], string> = { info: 'text-slate-300', warn: 'text-amber-300', error: 'text-red-300' };

function Log({ jobId }: { readonly jobId: string }) {
  const log = useJobLog(jobId);
  const box = useRef<HTMLDivElement>(null);
  const stick = useRef(true);
  const lines = log.data ?? [];
  // Follow new lines only while the reader is at the bottom; scrolling up to read stops following.
  useEffect(() => {
    const el = box.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  }, [lines.length]);
  return (
    <Card aria-labelledby="log-title">
      <CardHeader id="log-title" title="Log" description={`${formatCount(lines.length)} lines, streaming`} />
      <div
        ref={box}
        role="log"
        aria-label="Job log"
        tabIndex={0}
        onScroll={(e) => {
          const el = e.currentTarget;
          stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 24;
        }}
        className="h-72 overflow-y-auto rounded-b-lg bg-slate-900 px-4 py-3 font-mono text-xs leading-5"
      >
        {log.error ? <ErrorBox error={log.error} retry={() => void log.refetch()} /> : null}
        {lines.length === 0 && !log.isPending ? <p className="text-slate-400">No log lines yet.</p> : null}
        {lines.map((l, i) => (
          <div key={l.id ?? `live-${i}`} className={cn('break-all whitespace-pre-wrap', LEVEL_STYLE[l.level] ?? 'text-slate-300')}>
            <span className="num text-slate-500">{new Date(l.at).toLocaleTimeString()} </span>
            {l.message}
          </div>
        ))}
      </div>
    </Card>
  );
}

export function JobPage() {
  const { jobId } = route.useParams();
  const job = useJob(jobId);
  if (!job.data) {
    return (
      <>
        <PageHeader title="Job" />
        {job.error ? <ErrorBox error={job.error} retry={() => void job.refetch()} /> : <Loading />}
      </>
    );
  }
  const j = job.data;
  const title = jobTitle(j);
  const status = displayStatus(j);
  return (
    <>
      <PageHeader
        title={title}
        description={
          <span className="flex flex-wrap items-center gap-2">
            <StatusBadge job={j} />
            <span className="num">
              job {shortId(j.id)} · {j.kind} · {j.trigger} · requested {formatTime(j.requestedAt)}
              {j.attempt > 1 ? ` · attempt ${j.attempt} of ${j.maxRetries + 1}` : ''}
            </span>
          </span>
        }
        actions={<JobControls job={j} title={title} />}
      />
      {j.error && status !== 'running' ? <ErrorBox className="mb-4" title={j.status === 'completed' ? 'Completed with problems' : `The job is ${status}`} error={new Error(j.error)} /> : null}
      {j.snapshotId && j.kind === 'backup' ? (
        <p className="mb-4 flex items-center gap-2 text-sm text-slate-700">
          <Archive className="h-4 w-4 text-slate-500" aria-hidden="true" />
          Snapshot <span className="num font-mono">{shortId(j.snapshotId)}</span>
          {j.params.destinations?.[0] ? (
            <Link to="/snapshots" search={{ destination: j.params.destinations[0].id, agent: j.agentId, snapshot: j.snapshotId }} className="font-medium text-brand-700 underline">
              Browse it
            </Link>
          ) : null}
        </p>
      ) : null}
      <div className="grid gap-4 lg:grid-cols-3">
        <div className="min-w-0 space-y-4 lg:col-span-2">
          <Overall job={j} />
          {j.params.scaleOut ? <Shards job={j} /> : null}
          {j.kind === 'backup' ? <Destinations job={j} /> : null}
          <Files job={j} />
        </div>
        <div className="min-w-0 space-y-4">
          <AgentCard job={j} />
          {j.kind === 'backup' ? <Directories job={j} /> : null}
          <Card aria-labelledby="timing-title">
            <CardHeader id="timing-title" title="Timing" />
            <CardBody>
              <dl className="grid grid-cols-2 gap-2 text-sm">
                <dt className="text-slate-600">Requested</dt>
                <dd className="num">{formatTime(j.requestedAt)}</dd>
                <dt className="text-slate-600">Started</dt>
                <dd className="num">{formatTime(j.startedAt)}</dd>
                <dt className="text-slate-600">Finished</dt>
                <dd className="num">{formatTime(j.finishedAt)}</dd>
                <dt className="text-slate-600">Duration</dt>
                <dd className="num">{formatDuration(j.durationMs)}</dd>
                {j.kind === 'backup' ? (
                  <>
                    <dt className="flex items-center gap-1 text-slate-600">
                      <Gauge className="h-3.5 w-3.5" aria-hidden="true" /> Added
                    </dt>
                    <dd className="num">{formatBytes(j.bytesAdded)}</dd>
                  </>
                ) : null}
              </dl>
            </CardBody>
          </Card>
          <RetentionCard job={j} />
        </div>
      </div>
      <div className="mt-4">
        <Log jobId={j.id} />
      </div>
    </>
  );
}
