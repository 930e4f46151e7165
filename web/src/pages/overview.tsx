// The overview: at a glance, is everything protected? Machines and their state, the last success of
// every plan on every destination, data protected, open alerts, what is running now, and charts of
// data added and job outcomes over the last 30 days.
import { Link } from '@tanstack/react-router';
import { AlertTriangle, Bell, CheckCircle2, Circle, Database, ShieldAlert, ShieldCheck, ShieldQuestion } from 'lucide-react';
import type { Overview, OverviewMachine } from '../api/dashboard-types.ts';
import { ACTIVE_STATUSES, useAlerts, useOverview, useTasks } from '../api/queries.ts';
import { DataAddedChart, OutcomesChart } from '../components/charts.tsx';
import { GlobalPauseBanner, GlobalPauseButton } from '../components/global-pause.tsx';
import { TaskList } from '../components/task-list.tsx';
import { Badge } from '../components/ui/badge.tsx';
import { Card, CardBody, CardHeader } from '../components/ui/card.tsx';
import { PageHeader } from '../components/ui/page.tsx';
import { ErrorBox, Skeleton } from '../components/ui/states.tsx';
import { Table, Td, Th } from '../components/ui/table.tsx';
import { cn } from '../lib/cn.ts';
import { formatAgo, formatBytes, formatCount, formatTime } from '../lib/format.ts';

function Tile({ label, value, sub, icon, tone = 'slate', to }: { readonly label: string; readonly value: string; readonly sub: string; readonly icon: React.ReactNode; readonly tone?: 'slate' | 'green' | 'red' | 'amber'; readonly to: string }) {
  const colors = { slate: 'text-slate-500', green: 'text-green-600', red: 'text-red-600', amber: 'text-amber-600' };
  return (
    <Link to={to} className="block rounded-lg border border-slate-200 bg-white p-4 shadow-xs hover:border-slate-300">
      <div className="flex items-center justify-between">
        <p className="text-sm font-medium text-slate-600">{label}</p>
        <span className={colors[tone]} aria-hidden="true">
          {icon}
        </span>
      </div>
      <p className="num mt-1 text-2xl font-semibold text-slate-900">{value}</p>
      {/* Two lines kept for it where tiles are narrow (a phone's two columns), so it is neither cut nor moving. */}
      <p className="num h-8 line-clamp-2 text-xs text-slate-600 lg:h-4 lg:line-clamp-1">{sub}</p>
    </Link>
  );
}

const MACHINE = {
  protected: { icon: ShieldCheck, color: 'text-green-600', label: 'Protected' },
  'at-risk': { icon: ShieldAlert, color: 'text-red-600', label: 'At risk' },
  unprotected: { icon: ShieldQuestion, color: 'text-amber-600', label: 'Not protected yet' },
} as const;

function Machines({ machines }: { readonly machines: readonly OverviewMachine[] }) {
  return (
    <Card aria-labelledby="machines-title">
      <CardHeader id="machines-title" title="Machines" />
      {machines.length === 0 ? (
        <p className="p-4 text-sm text-slate-600">
          No machine yet.{' '}
          <Link to="/agents" className="font-medium text-brand-700 underline">
            Add an agent
          </Link>{' '}
          on each machine to back up.
        </p>
      ) : (
        <ul className="divide-y divide-slate-100">
          {machines.map((m) => {
            const look = MACHINE[m.state];
            return (
              <li key={m.id} className="flex items-start gap-3 px-4 py-2.5">
                <look.icon className={cn('mt-0.5 h-5 w-5 shrink-0', look.color)} aria-hidden="true" />
                <div className="min-w-0 flex-1">
                  <p className="flex flex-wrap items-center gap-2">
                    <span className="truncate font-medium">{m.hostname}</span>
                    <span className="sr-only">: {look.label}</span>
                    {m.status === 'offline' ? <Badge tone="red">offline</Badge> : null}
                  </p>
                  <p className="truncate text-xs text-slate-600">{m.reason ?? (m.lastSuccessAt ? `last backup ${formatAgo(m.lastSuccessAt)}` : `${m.plans} plan${m.plans === 1 ? '' : 's'}`)}</p>
                </div>
              </li>
            );
          })}
        </ul>
      )}
    </Card>
  );
}

function LastSuccess({ overview }: { readonly overview: Overview }) {
  const rows = overview.plans.flatMap((p) => p.destinations.map((d) => ({ plan: p, d })));
  const machine = new Map(overview.machines.map((m) => [m.id, m.hostname]));
  return (
    <Card aria-labelledby="last-title">
      <CardHeader id="last-title" title="Last success per plan and destination" />
      {rows.length === 0 ? (
        <p className="p-4 text-sm text-slate-600">
          No plan yet.{' '}
          <Link to="/plans/new" className="font-medium text-brand-700 underline">
            Create a plan
          </Link>{' '}
          to start backing up.
        </p>
      ) : (
        <Table label="Last success per plan and destination">
          <thead>
            <tr>
              <Th>Plan</Th>
              <Th>Destination</Th>
              <Th>Last success</Th>
              <Th>Last run</Th>
            </tr>
          </thead>
          <tbody>
            {rows.map(({ plan, d }) => (
              <tr key={`${plan.id}:${d.destinationId}`}>
                <Td>
                  <Link to="/plans/$planId" params={{ planId: plan.id }} className="font-medium hover:underline">
                    {plan.name}
                  </Link>
                  <span className="block text-xs text-slate-600">{machine.get(plan.agentId) ?? ''}</span>
                </Td>
                <Td>{d.name}</Td>
                <Td className="num whitespace-nowrap" title={d.lastSuccessAt ? formatTime(d.lastSuccessAt) : undefined}>
                  {d.lastSuccessAt ? formatAgo(d.lastSuccessAt) : <span className="text-amber-700">never</span>}
                </Td>
                <Td>
                  {d.lastStatus === 'completed' ? (
                    <Badge tone="green">
                      <CheckCircle2 className="h-3 w-3" aria-hidden="true" />
                      ok
                    </Badge>
                  ) : d.lastStatus === 'failed' ? (
                    <Badge tone="red" {...(d.lastError ? { title: d.lastError } : {})}>
                      <AlertTriangle className="h-3 w-3" aria-hidden="true" />
                      failed
                    </Badge>
                  ) : (
                    <Badge tone="neutral">
                      <Circle className="h-3 w-3" aria-hidden="true" />
                      no run yet
                    </Badge>
                  )}
                </Td>
              </tr>
            ))}
          </tbody>
        </Table>
      )}
    </Card>
  );
}

function ActivePanel() {
  const tasks = useTasks();
  const active = tasks.data?.filter((j) => (ACTIVE_STATUSES as readonly string[]).includes(j.status)) ?? [];
  return (
    <Card aria-labelledby="active-title">
      <CardHeader
        id="active-title"
        title="Active tasks"
        actions={
          <>
            <GlobalPauseButton />
            <Link to="/tasks" className="text-sm font-medium text-brand-700 underline">
              All tasks
            </Link>
          </>
        }
      />
      {tasks.error ? <ErrorBox className="m-4" error={tasks.error} retry={() => void tasks.refetch()} /> : null}
      {tasks.data ? <TaskList jobs={active.slice(0, 5)} emptyText="Nothing is running or waiting right now." /> : !tasks.error ? <Skeleton className="m-4 h-16" /> : null}
      {active.length > 5 ? (
        <p className="border-t border-slate-100 px-4 py-2 text-sm">
          <Link to="/tasks" className="text-brand-700 underline">
            {active.length - 5} more
          </Link>
        </p>
      ) : null}
    </Card>
  );
}

function OpenAlerts() {
  const alerts = useAlerts('open');
  const list = alerts.data ?? [];
  return (
    <Card aria-labelledby="alerts-title">
      <CardHeader
        id="alerts-title"
        title="Open alerts"
        actions={
          <Link to="/alerts" className="text-sm font-medium text-brand-700 underline">
            All alerts
          </Link>
        }
      />
      {alerts.data && list.length === 0 ? (
        <p className="flex items-center gap-2 p-4 text-sm text-slate-700">
          <CheckCircle2 className="h-4 w-4 text-green-600" aria-hidden="true" />
          Nothing needs attention.
        </p>
      ) : (
        <ul className="divide-y divide-slate-100">
          {list.slice(0, 5).map((a) => (
            <li key={a.id} className="px-4 py-2 text-sm">
              <p className="break-words">{a.message}</p>
              <p className="text-xs text-slate-600">
                {formatAgo(a.createdAt)}
                {a.acknowledgedAt ? ` · acknowledged by ${a.acknowledgedBy}` : ''}
              </p>
            </li>
          ))}
        </ul>
      )}
    </Card>
  );
}

export function OverviewPage() {
  const overview = useOverview();
  const o = overview.data;
  const protectedCount = o?.machines.filter((m) => m.state === 'protected').length ?? 0;
  const atRisk = o?.machines.filter((m) => m.state === 'at-risk').length ?? 0;
  const notYet = (o?.machines.length ?? 0) - protectedCount - atRisk;
  return (
    <>
      <PageHeader title="Overview" description="Is everything protected?" />
      <GlobalPauseBanner />
      {overview.error ? <ErrorBox className="mb-4" error={overview.error} retry={() => void overview.refetch()} /> : null}
      <div className="mb-4 grid grid-cols-2 gap-4 lg:grid-cols-4">
        {o ? (
          <>
            <Tile to="/agents" label="Machines protected" value={`${protectedCount} of ${o.machines.length}`} sub={atRisk ? `${atRisk} at risk` : notYet ? `${notYet} not backed up yet` : o.machines.length ? 'all with a recent backup' : 'no machine yet'} icon={<ShieldCheck className="h-5 w-5" />} tone={atRisk ? 'red' : protectedCount === o.machines.length && o.machines.length > 0 ? 'green' : 'amber'} />
            <Tile to="/snapshots" label="Data protected" value={formatBytes(o.bytesProtected)} sub={`${formatCount(o.filesProtected)} files`} icon={<Database className="h-5 w-5" />} />
            <Tile to="/alerts" label="Open alerts" value={String(o.openAlerts)} sub={o.unacknowledgedAlerts ? `${o.unacknowledgedAlerts} not acknowledged` : 'all acknowledged'} icon={<Bell className="h-5 w-5" />} tone={o.unacknowledgedAlerts ? 'red' : 'slate'} />
            <Tile to="/tasks" label="Active tasks" value={String(o.activeJobs)} sub="running, queued or paused" icon={<CheckCircle2 className="h-5 w-5" />} />
          </>
        ) : (
          [0, 1, 2, 3].map((i) => <Skeleton key={i} className="h-[6.25rem]" />)
        )}
      </div>
      <div className="grid gap-4 lg:grid-cols-3">
        <div className="min-w-0 space-y-4 lg:col-span-2">
          <ActivePanel />
          {o ? <LastSuccess overview={o} /> : <Skeleton className="h-40" />}
          <div className="grid gap-4 xl:grid-cols-2">
            <Card aria-labelledby="chart-added">
              <CardHeader id="chart-added" title="Data added, last 30 days" />
              <CardBody>{o ? <DataAddedChart points={o.daily} /> : <Skeleton className="h-56" />}</CardBody>
            </Card>
            <Card aria-labelledby="chart-outcomes">
              <CardHeader id="chart-outcomes" title="Job outcomes, last 30 days" />
              <CardBody>{o ? <OutcomesChart points={o.daily} /> : <Skeleton className="h-56" />}</CardBody>
            </Card>
          </div>
        </div>
        <div className="min-w-0 space-y-4">
          {o ? <Machines machines={o.machines} /> : <Skeleton className="h-40" />}
          <OpenAlerts />
        </div>
      </div>
    </>
  );
}
