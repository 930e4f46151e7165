// What each page reads, as TanStack Query hooks with one key per resource. Live events (events.ts)
// write into the same keys, so a page shows new data without asking again.
import { keepPreviousData, useMutation, useQuery, useQueryClient, type QueryClient } from '@tanstack/react-query';
import { del, get, patch, post, put, qs } from './client.ts';
import type { Agent, Alert, ApiKey, AuthState, Destination, Invitation, Job, JobDetail, JobPage, LogLine, Plan, Report, Session, ShardStatus, User } from './types.ts';
import type { Overview, PauseState, SettingsView } from './dashboard-types.ts';

export const keys = {
  session: ['session'] as const,
  authState: ['auth-state'] as const,
  agents: ['agents'] as const,
  destinations: ['destinations'] as const,
  plans: ['plans'] as const,
  plan: (id: string) => ['plan', id] as const,
  tasks: ['tasks'] as const,
  history: (filters: object) => ['history', filters] as const,
  job: (id: string) => ['job', id] as const,
  jobLog: (id: string) => ['job-log', id] as const,
  jobShards: (id: string) => ['job-shards', id] as const,
  alerts: (state: 'open' | 'all') => ['alerts', state] as const,
  reports: (period: string, at: number | undefined) => ['reports', period, at] as const,
  overview: ['overview'] as const,
  pause: ['pause'] as const,
  keys: ['keys'] as const,
  users: ['users'] as const,
  invitations: ['invitations'] as const,
  settings: ['settings'] as const,
};

export const ACTIVE_STATUSES = ['pending', 'running', 'paused', 'interrupted'] as const;
const FINISHED_STATUSES = ['completed', 'failed', 'cancelled'] as const;
/** Finished jobs stay in the tasks panel this long. */
export const RECENT_MS = 24 * 3600_000;

export function useSession() {
  return useQuery({ queryKey: keys.session, queryFn: () => get<Session>('/api/auth/session'), retry: false, staleTime: Infinity });
}

export function useAuthState() {
  return useQuery({ queryKey: keys.authState, queryFn: () => get<AuthState>('/api/auth/state'), retry: 1 });
}

export function useAgents() {
  return useQuery({ queryKey: keys.agents, queryFn: () => get<Agent[]>('/api/agents') });
}

export function useDestinations() {
  return useQuery({ queryKey: keys.destinations, queryFn: () => get<Destination[]>('/api/destinations') });
}

export function usePlans() {
  return useQuery({ queryKey: keys.plans, queryFn: () => get<Plan[]>('/api/plans') });
}

export function usePlan(id: string) {
  return useQuery({ queryKey: keys.plan(id), queryFn: () => get<Plan>(`/api/plans/${encodeURIComponent(id)}`) });
}

/** Jobs that are not finished, and those finished in the last day, newest first. */
export async function fetchTasks(): Promise<Job[]> {
  const [active, recent] = await Promise.all([
    get<JobPage>(`/api/jobs${qs({ status: ACTIVE_STATUSES.join(','), limit: 200 })}`),
    get<JobPage>(`/api/jobs${qs({ status: FINISHED_STATUSES.join(','), from: Date.now() - RECENT_MS, limit: 30 })}`),
  ]);
  return [...active.jobs, ...recent.jobs].sort((a, b) => b.requestedAt - a.requestedAt);
}

export function useTasks() {
  return useQuery({ queryKey: keys.tasks, queryFn: fetchTasks, refetchInterval: 60_000 });
}

export interface HistoryFilters {
  readonly status?: string;
  readonly agent?: string;
  readonly plan?: string;
  readonly kind?: 'backup' | 'restore';
  readonly from?: number;
  readonly to?: number;
  readonly before?: string;
}

export function useHistory(filters: HistoryFilters) {
  return useQuery({ queryKey: keys.history(filters), queryFn: () => get<JobPage>(`/api/jobs${qs({ ...filters, limit: 50 })}`), placeholderData: keepPreviousData });
}

export function useJob(id: string) {
  return useQuery({ queryKey: keys.job(id), queryFn: () => get<JobDetail>(`/api/jobs/${encodeURIComponent(id)}`) });
}

/** A scaled-out job's shards; live through job.shards events, fetched only for jobs that have them. */
export function useJobShards(id: string, enabled: boolean) {
  return useQuery({ queryKey: keys.jobShards(id), queryFn: () => get<{ shards: ShardStatus | null }>(`/api/jobs/${encodeURIComponent(id)}/shards`).then((r) => r.shards), enabled });
}

export function useJobLog(id: string) {
  return useQuery({ queryKey: keys.jobLog(id), queryFn: () => get<{ lines: LogLine[] }>(`/api/jobs/${encodeURIComponent(id)}/log?limit=5000`).then((r) => r.lines) });
}

export function useAlerts(state: 'open' | 'all') {
  return useQuery({ queryKey: keys.alerts(state), queryFn: () => get<Alert[]>(`/api/alerts${qs({ state })}`) });
}

export function useReport(period: string, at: number | undefined) {
  return useQuery({ queryKey: keys.reports(period, at), queryFn: () => get<Report>(`/api/reports${qs({ period, at })}`), placeholderData: keepPreviousData });
}

export function useOverview() {
  return useQuery({ queryKey: keys.overview, queryFn: () => get<Overview>(`/api/dashboard/overview${qs({ tzOffset: new Date().getTimezoneOffset() })}`), refetchInterval: 60_000 });
}

export function usePauseState() {
  return useQuery({ queryKey: keys.pause, queryFn: () => get<PauseState>('/api/dashboard/pause') });
}

export function useApiKeys() {
  return useQuery({ queryKey: keys.keys, queryFn: () => get<ApiKey[]>('/api/keys') });
}

export function useUsers(enabled: boolean) {
  return useQuery({ queryKey: keys.users, queryFn: () => get<User[]>('/api/admin/users'), enabled });
}

export function useInvitations(enabled: boolean) {
  return useQuery({ queryKey: keys.invitations, queryFn: () => get<Invitation[]>('/api/admin/invitations'), enabled });
}

export function useSettings(enabled: boolean) {
  return useQuery({ queryKey: keys.settings, queryFn: () => get<SettingsView>('/api/admin/settings'), enabled });
}

/**
 * Puts a job's new state into every cached place it appears, unless what is cached is newer: a pause's
 * answer (the job as it was when asked) can arrive after the event of the agent's "paused", which must win.
 */
export function storeJob(client: QueryClient, job: Job): void {
  const stale = (old: Job): boolean => job.updatedAt < old.updatedAt;
  client.setQueryData<JobDetail>(keys.job(job.id), (old) => (old && !stale(old) ? { ...old, ...job } : old));
  client.setQueryData<Job[]>(keys.tasks, (old) => {
    if (!old) return old;
    const i = old.findIndex((j) => j.id === job.id);
    if (i < 0) return [job, ...old];
    if (stale(old[i]!)) return old;
    const next = old.slice();
    next[i] = { ...old[i]!, ...job };
    return next;
  });
}

export function useJobControl() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: ({ id, action }: { id: string; action: 'pause' | 'resume' | 'cancel' }) => post<Job>(`/api/jobs/${encodeURIComponent(id)}/${action}`),
    onSuccess: (job) => storeJob(client, job),
  });
}

export function useRunPlan() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (planId: string) => post<Job>(`/api/plans/${encodeURIComponent(planId)}/run`),
    onSuccess: (job) => storeJob(client, job),
  });
}

export function useGlobalPause() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (paused: boolean) => put<PauseState>('/api/dashboard/pause', { paused }),
    onSuccess: (state) => {
      client.setQueryData(keys.pause, state);
      void client.invalidateQueries({ queryKey: keys.tasks });
    },
  });
}

export { del, get, patch, post, put };
