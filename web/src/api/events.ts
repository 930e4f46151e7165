// The dashboard's live feed: one EventSource on /api/events for the whole app. Each event is written
// into the query cache, so whatever page is open updates in place. EventSource reconnects by itself and
// resends the last id it saw; the server replays what was missed, or sends 'reset' when it cannot.
import { useQueryClient, type QueryClient } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { keys, storeJob } from './queries.ts';
import type { Agent, Job, JobDetail, LogLine, Progress, ShardStatus } from './types.ts';

export type LiveState = 'connecting' | 'live' | 'reconnecting';

/** Lists that change with many events are fetched again at most this often. */
const REFRESH_MS = 2000;

function throttled(fn: () => void, ms: number): () => void {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return () => {
    if (timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      fn();
    }, ms);
  };
}

function parse<T>(e: MessageEvent): T | undefined {
  try {
    return JSON.parse(e.data as string) as T;
  } catch {
    return undefined;
  }
}

function applyProgress(client: QueryClient, jobId: string, progress: Progress): void {
  client.setQueryData<JobDetail>(keys.job(jobId), (old) => (old ? { ...old, progress, stage: progress.stage, bytesDone: progress.bytesDone, bytesTotal: progress.bytesTotal, filesDone: progress.filesDone, filesTotal: progress.filesTotal } : old));
  client.setQueryData<Job[]>(keys.tasks, (old) => old?.map((j) => (j.id === jobId ? { ...j, stage: progress.stage, bytesDone: progress.bytesDone, bytesTotal: progress.bytesTotal, filesDone: progress.filesDone, filesTotal: progress.filesTotal } : j)));
  liveProgress.set(jobId, progress);
}

/** The newest progress per job, for rows of lists that do not carry it. */
export const liveProgress = new Map<string, Progress>();

export function useLiveEvents(enabled: boolean): LiveState {
  const client = useQueryClient();
  const [state, setState] = useState<LiveState>('connecting');
  useEffect(() => {
    if (!enabled) return;
    const source = new EventSource('/api/events');
    const refreshHistory = throttled(() => {
      void client.invalidateQueries({ queryKey: ['history'] });
      void client.invalidateQueries({ queryKey: keys.overview });
      void client.invalidateQueries({ queryKey: keys.agents });
    }, REFRESH_MS);
    const refreshAlerts = throttled(() => {
      void client.invalidateQueries({ queryKey: ['alerts'] });
      void client.invalidateQueries({ queryKey: keys.overview });
    }, 300);
    let lost = false;
    source.onopen = () => {
      setState('live');
      // Back after an outage: what was missed is replayed, but lists fetched meanwhile may have failed.
      if (lost) void client.invalidateQueries();
      lost = false;
    };
    source.onerror = () => {
      lost = true;
      // CLOSED means the server refused the stream (the session ended): ask who we are again.
      if (source.readyState === EventSource.CLOSED) void client.invalidateQueries({ queryKey: keys.session });
      setState('reconnecting');
    };
    source.addEventListener('job.updated', (e) => {
      const job = parse<Job>(e);
      if (!job) return;
      storeJob(client, job);
      refreshHistory();
      if (job.status !== 'running' && job.status !== 'paused') void client.invalidateQueries({ queryKey: keys.job(job.id) });
    });
    source.addEventListener('job.progress', (e) => {
      const data = parse<{ jobId: string; progress: Progress }>(e);
      if (data) applyProgress(client, data.jobId, data.progress);
    });
    source.addEventListener('job.log', (e) => {
      const data = parse<{ jobId: string; lines: LogLine[] }>(e);
      if (data) client.setQueryData<LogLine[]>(keys.jobLog(data.jobId), (old) => (old ? [...old, ...data.lines].slice(-5000) : old));
    });
    source.addEventListener('job.shards', (e) => {
      const data = parse<{ jobId: string; shards: ShardStatus }>(e);
      if (data) client.setQueryData<ShardStatus | null>(keys.jobShards(data.jobId), data.shards);
    });
    source.addEventListener('agent.updated', (e) => {
      const agent = parse<Agent>(e);
      if (!agent) return;
      client.setQueryData<Agent[]>(keys.agents, (old) => {
        if (!old) return old;
        const i = old.findIndex((a) => a.id === agent.id);
        // The event's agent has no running count of its own; keep the one the list had.
        if (i >= 0) return old.map((a) => (a.id === agent.id ? { ...agent, running: a.running } : a));
        return [...old, agent].sort((a, b) => a.hostname.localeCompare(b.hostname));
      });
      refreshHistory();
    });
    for (const type of ['alert.raised', 'alert.resolved', 'alert.acknowledged']) source.addEventListener(type, refreshAlerts);
    source.addEventListener('reset', () => void client.invalidateQueries());
    return () => source.close();
  }, [client, enabled]);
  return state;
}
