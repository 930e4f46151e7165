// Every job's outcome, newest first, filtered by state, agent, plan, kind and date; the filters live in
// the address, so a filtered view can be bookmarked or shared.
import { getRouteApi, Link, useNavigate } from '@tanstack/react-router';
import { History as HistoryIcon } from 'lucide-react';
import { useState } from 'react';
import { useAgents, useHistory, usePlans, type HistoryFilters } from '../api/queries.ts';
import { jobTitle, StatusBadge } from '../components/job-status.tsx';
import { Button } from '../components/ui/button.tsx';
import { Card } from '../components/ui/card.tsx';
import { Field, Input, Select } from '../components/ui/field.tsx';
import { PageHeader } from '../components/ui/page.tsx';
import { Empty, ErrorBox, Loading } from '../components/ui/states.tsx';
import { Table, Td, Th } from '../components/ui/table.tsx';
import { formatBytes, formatCount, formatDuration, formatTime, shortId } from '../lib/format.ts';

const route = getRouteApi('/app/history');

export interface HistorySearch {
  status?: string;
  agent?: string;
  plan?: string;
  kind?: 'backup' | 'restore';
  from?: string;
  to?: string;
}

const STATUS_CHOICES = [
  { value: '', label: 'Any' },
  { value: 'completed', label: 'Completed' },
  { value: 'failed', label: 'Failed' },
  { value: 'cancelled', label: 'Cancelled' },
  { value: 'interrupted', label: 'Interrupted' },
  { value: 'pending,running,paused', label: 'Not finished' },
];

export function parseHistorySearch(s: Record<string, unknown>): HistorySearch {
  const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
  const date = (v: unknown): string | undefined => (typeof v === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(v) ? v : undefined);
  const out: HistorySearch = {};
  const status = str(s.status);
  if (status && STATUS_CHOICES.some((c) => c.value === status)) out.status = status;
  if (str(s.agent)) out.agent = str(s.agent)!;
  if (str(s.plan)) out.plan = str(s.plan)!;
  if (s.kind === 'backup' || s.kind === 'restore') out.kind = s.kind;
  if (date(s.from)) out.from = date(s.from)!;
  if (date(s.to)) out.to = date(s.to)!;
  return out;
}

/** Local midnight of a YYYY-MM-DD day, in ms. */
function dayStart(day: string): number {
  const [y, m, d] = day.split('-').map(Number);
  return new Date(y!, m! - 1, d!).getTime();
}

export function HistoryPage() {
  const search = route.useSearch();
  const navigate = useNavigate();
  const agents = useAgents();
  const plans = usePlans();
  const [pages, setPages] = useState<string[]>([]);
  const before = pages[pages.length - 1];
  const filters: HistoryFilters = {
    ...(search.status ? { status: search.status } : {}),
    ...(search.agent ? { agent: search.agent } : {}),
    ...(search.plan ? { plan: search.plan } : {}),
    ...(search.kind ? { kind: search.kind } : {}),
    ...(search.from ? { from: dayStart(search.from) } : {}),
    ...(search.to ? { to: dayStart(search.to) + 24 * 3600_000 } : {}),
    ...(before ? { before } : {}),
  };
  const history = useHistory(filters);
  const agentName = new Map(agents.data?.map((a) => [a.id, a.hostname]));
  const planName = new Map(plans.data?.map((p) => [p.id, p.name]));
  const setFilter = (key: keyof HistorySearch, value: string): void => {
    setPages([]);
    void navigate({ to: '/history', search: (prev: HistorySearch) => ({ ...prev, [key]: value || undefined }) });
  };
  const active = Object.values(search).some(Boolean);

  return (
    <>
      <PageHeader title="History" description="Every backup and restore, newest first." />
      <Card className="mb-4 p-4" aria-label="Filters">
        <form className="grid gap-3 sm:grid-cols-3 lg:grid-cols-6" onSubmit={(e) => e.preventDefault()}>
          <Field label="Status">
            {(p) => (
              <Select {...p} value={search.status ?? ''} onChange={(e) => setFilter('status', e.target.value)}>
                {STATUS_CHOICES.map((c) => (
                  <option key={c.value} value={c.value}>
                    {c.label}
                  </option>
                ))}
              </Select>
            )}
          </Field>
          <Field label="Agent">
            {(p) => (
              <Select {...p} value={search.agent ?? ''} onChange={(e) => setFilter('agent', e.target.value)}>
                <option value="">Any</option>
                {agents.data?.map((a) => (
                  <option key={a.id} value={a.id}>
                    {a.hostname}
                  </option>
                ))}
              </Select>
            )}
          </Field>
          <Field label="Plan">
            {(p) => (
              <Select {...p} value={search.plan ?? ''} onChange={(e) => setFilter('plan', e.target.value)}>
                <option value="">Any</option>
                {plans.data?.map((pl) => (
                  <option key={pl.id} value={pl.id}>
                    {pl.name}
                  </option>
                ))}
              </Select>
            )}
          </Field>
          <Field label="Kind">
            {(p) => (
              <Select {...p} value={search.kind ?? ''} onChange={(e) => setFilter('kind', e.target.value)}>
                <option value="">Any</option>
                <option value="backup">Backups</option>
                <option value="restore">Restores</option>
              </Select>
            )}
          </Field>
          <Field label="From">{(p) => <Input {...p} type="date" value={search.from ?? ''} onChange={(e) => setFilter('from', e.target.value)} />}</Field>
          <Field label="To">{(p) => <Input {...p} type="date" value={search.to ?? ''} onChange={(e) => setFilter('to', e.target.value)} />}</Field>
        </form>
        {active ? (
          <Button size="sm" variant="ghost" className="mt-2" onClick={() => (setPages([]), void navigate({ to: '/history', search: {} }))}>
            Clear filters
          </Button>
        ) : null}
      </Card>
      <Card aria-label="Jobs">
        {history.error ? <ErrorBox className="m-4" error={history.error} retry={() => void history.refetch()} /> : null}
        {!history.data && !history.error ? <Loading /> : null}
        {history.data && history.data.jobs.length === 0 ? (
          <Empty icon={<HistoryIcon className="h-10 w-10" />} title={active ? 'No job matches these filters' : 'No job has run yet'}>
            {active ? 'Change or clear the filters.' : 'Jobs appear here once a plan runs.'}
          </Empty>
        ) : null}
        {history.data && history.data.jobs.length > 0 ? (
          <div aria-busy={history.isFetching}>
            <Table label="Job history">
              <thead>
                <tr>
                  <Th>Status</Th>
                  <Th>Job</Th>
                  {/* Below 2xl the agent goes under the job's name and the file count to the job's page, so the row fits a laptop's screen. */}
                  <Th className="hidden 2xl:table-cell">Agent</Th>
                  <Th>Requested</Th>
                  <Th className="text-right">Duration</Th>
                  <Th className="hidden text-right 2xl:table-cell">Files</Th>
                  <Th className="text-right">Data</Th>
                  <Th className="text-right">Added</Th>
                  <Th>Snapshot</Th>
                </tr>
              </thead>
              <tbody>
                {history.data.jobs.map((j) => (
                  <tr key={j.id}>
                    <Td>
                      <StatusBadge job={j} />
                    </Td>
                    <Td className="max-w-52 xl:max-w-64 2xl:max-w-xs">
                      <Link to="/jobs/$jobId" params={{ jobId: j.id }} className="block truncate font-medium hover:underline">
                        {jobTitle(j, planName)}
                      </Link>
                      {j.error ? (
                        <span className="block truncate text-xs text-red-700" title={j.error}>
                          {j.error}
                        </span>
                      ) : (
                        <span className="block truncate text-xs text-slate-600">
                          <span className="2xl:hidden">{agentName.get(j.agentId) ?? '–'} · </span>
                          {j.kind} · {j.trigger}
                        </span>
                      )}
                    </Td>
                    <Td className="hidden whitespace-nowrap 2xl:table-cell">{agentName.get(j.agentId) ?? '–'}</Td>
                    <Td className="num whitespace-nowrap">{formatTime(j.requestedAt)}</Td>
                    <Td className="num text-right whitespace-nowrap">{formatDuration(j.durationMs)}</Td>
                    <Td className="num hidden text-right 2xl:table-cell">{formatCount(j.filesDone)}</Td>
                    <Td className="num text-right whitespace-nowrap">{formatBytes(j.bytesDone)}</Td>
                    <Td className="num text-right whitespace-nowrap">{j.kind === 'backup' ? formatBytes(j.bytesAdded) : '–'}</Td>
                    <Td className="font-mono text-xs">{shortId(j.snapshotId)}</Td>
                  </tr>
                ))}
              </tbody>
            </Table>
            <div className="flex items-center justify-between border-t border-slate-100 px-4 py-3">
              <Button size="sm" disabled={pages.length === 0} onClick={() => setPages((p) => p.slice(0, -1))}>
                Newer
              </Button>
              <span className="num text-xs text-slate-600">Page {pages.length + 1}</span>
              <Button size="sm" disabled={!history.data.next} onClick={() => history.data?.next && setPages((p) => [...p, history.data!.next!])}>
                Older
              </Button>
            </div>
          </div>
        ) : null}
      </Card>
    </>
  );
}
