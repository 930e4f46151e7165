// Reports for a day, a week or a month: jobs run, success rate, data protected and added, charts per
// day, the slowest destinations and the failures; exported as JSON or CSV.
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { Link } from '@tanstack/react-router';
import { Download } from 'lucide-react';
import { useState } from 'react';
import { get, put, qs } from '../api/client.ts';
import type { DailyPoint, ReportEmail } from '../api/dashboard-types.ts';
import { useReport } from '../api/queries.ts';
import { DataAddedChart, OutcomesChart } from '../components/charts.tsx';
import { Card, CardBody, CardHeader } from '../components/ui/card.tsx';
import { Field, Input, Select } from '../components/ui/field.tsx';
import { PageHeader } from '../components/ui/page.tsx';
import { QueryState, Skeleton } from '../components/ui/states.tsx';
import { Table, Td, Th } from '../components/ui/table.tsx';
import { useToast } from '../components/ui/toast.tsx';
import { formatBytes, formatSpeed, formatTime, shortId } from '../lib/format.ts';

type Period = 'day' | 'week' | 'month';
const PERIOD_MS: Record<Period, number> = { day: 24 * 3600_000, week: 7 * 24 * 3600_000, month: 30 * 24 * 3600_000 };

/** The end of a chosen day (local), or now for today. */
function endOf(day: string): number | undefined {
  if (!day) return undefined;
  const [y, m, d] = day.split('-').map(Number);
  const end = new Date(y!, m! - 1, d! + 1).getTime();
  return end > Date.now() ? undefined : end;
}

function Tile({ label, value, sub }: { readonly label: string; readonly value: string; readonly sub?: string }) {
  return (
    <Card className="p-4">
      <p className="text-sm text-slate-600">{label}</p>
      <p className="num mt-1 text-2xl font-semibold">{value}</p>
      <p className="num h-4 text-xs text-slate-600">{sub ?? ''}</p>
    </Card>
  );
}

function ExportLink({ href, label, file }: { readonly href: string; readonly label: string; readonly file: string }) {
  return (
    <a href={href} download={file} className="inline-flex h-9 items-center gap-2 rounded-md border border-slate-300 bg-white px-3.5 text-sm font-medium text-slate-800 hover:bg-slate-50">
      <Download className="h-4 w-4" aria-hidden="true" />
      {label}
    </a>
  );
}

const EMAIL_CHOICES = [
  ['', 'Never'],
  ['day', 'Every day'],
  ['week', 'Every week'],
  ['month', 'Every 30 days'],
] as const;

/** Your report by email, on a schedule of your choice. */
function ReportEmailField() {
  const client = useQueryClient();
  const toast = useToast();
  const setting = useQuery({ queryKey: ['report-email'], queryFn: () => get<ReportEmail>('/api/reports/email') });
  const choose = async (value: string): Promise<void> => {
    try {
      client.setQueryData(['report-email'], await put<ReportEmail>('/api/reports/email', { period: value === '' ? null : value }));
      toast.ok(value === '' ? 'The report is no longer emailed' : 'The report will be emailed to you');
    } catch (err) {
      toast.error(`Could not change it: ${(err as Error).message}`);
    }
  };
  const s = setting.data;
  return (
    <Field label="Email me the report" hint={s ? (s.smtp ? `To ${s.to}, covering the period since the last one.` : 'The server has no SMTP server yet; an administrator sets one in Settings.') : undefined}>
      {(p) => (
        <Select {...p} value={s?.period ?? ''} disabled={!s} onChange={(e) => void choose(e.target.value)}>
          {EMAIL_CHOICES.map(([value, label]) => (
            <option key={value} value={value}>
              {label}
            </option>
          ))}
        </Select>
      )}
    </Field>
  );
}

export function ReportsPage() {
  const [period, setPeriod] = useState<Period>('week');
  const [day, setDay] = useState('');
  const at = endOf(day);
  const report = useReport(period, at);
  const to = at ?? Date.now();
  const daily = useQuery({
    queryKey: ['daily', period, at],
    queryFn: () => get<DailyPoint[]>(`/api/dashboard/daily${qs({ from: to - PERIOD_MS[period], to, tzOffset: new Date().getTimezoneOffset() })}`),
  });
  const stamp = new Date(to).toISOString().slice(0, 10);
  const query = qs({ period, at });
  return (
    <>
      <PageHeader
        title="Reports"
        description="Backups over a period, and what went wrong."
        actions={
          <>
            <ExportLink href={`/api/reports${query}${query ? '&' : '?'}format=json`} label="Export JSON" file={`coffer-${period}-${stamp}.json`} />
            <ExportLink href={`/api/reports${query}${query ? '&' : '?'}format=csv`} label="Export CSV" file={`coffer-${period}-${stamp}.csv`} />
          </>
        }
      />
      <Card className="mb-4 p-4" aria-label="Period">
        <div className="grid gap-3 sm:grid-cols-3">
          <Field label="Period">
            {(p) => (
              <Select {...p} value={period} onChange={(e) => setPeriod(e.target.value as Period)}>
                <option value="day">One day</option>
                <option value="week">One week</option>
                <option value="month">30 days</option>
              </Select>
            )}
          </Field>
          <Field label="Ending on" hint="Empty: up to now.">
            {(p) => <Input {...p} type="date" value={day} max={new Date().toISOString().slice(0, 10)} onChange={(e) => setDay(e.target.value)} />}
          </Field>
          <ReportEmailField />
        </div>
      </Card>
      <QueryState
        query={report}
        loading={
          <div className="grid grid-cols-2 gap-4 lg:grid-cols-4">
            {[0, 1, 2, 3].map((i) => (
              <Skeleton key={i} className="h-24" />
            ))}
          </div>
        }
      >
        {(r) => (
          <div className="space-y-4" aria-busy={report.isFetching}>
            <p className="num text-sm text-slate-600">
              {formatTime(r.from)} – {formatTime(r.to)}
            </p>
            <div className="grid grid-cols-2 gap-4 lg:grid-cols-4">
              <Tile label="Jobs run" value={String(r.jobs.total)} sub={Object.entries(r.jobs.byStatus).map(([s, n]) => `${n} ${s}`).join(' · ')} />
              <Tile label="Success rate" value={r.successRate === null ? '–' : `${Math.round(r.successRate * 100)}%`} sub="of finished backups" />
              <Tile label="Data protected" value={formatBytes(r.bytesProtected)} sub="as of each plan's last success" />
              <Tile label="Data added" value={formatBytes(r.bytesAdded)} sub="after deduplication and compression" />
            </div>
            <div className="grid gap-4 lg:grid-cols-2">
              <Card aria-labelledby="rep-added">
                <CardHeader id="rep-added" title="Data added per day" />
                <CardBody>{daily.data ? <DataAddedChart points={daily.data} /> : <Skeleton className="h-56" />}</CardBody>
              </Card>
              <Card aria-labelledby="rep-outcomes">
                <CardHeader id="rep-outcomes" title="Job outcomes per day" />
                <CardBody>{daily.data ? <OutcomesChart points={daily.data} /> : <Skeleton className="h-56" />}</CardBody>
              </Card>
            </div>
            <div className="grid gap-4 lg:grid-cols-2">
              <Card aria-labelledby="rep-slow">
                <CardHeader id="rep-slow" title="Slowest destinations" />
                {r.slowestDestinations.length === 0 ? (
                  <p className="p-4 text-sm text-slate-600">No completed upload in this period.</p>
                ) : (
                  <Table label="Slowest destinations">
                    <thead>
                      <tr>
                        <Th>Destination</Th>
                        <Th className="text-right">Average speed</Th>
                        <Th className="text-right">Jobs</Th>
                      </tr>
                    </thead>
                    <tbody>
                      {r.slowestDestinations.map((d) => (
                        <tr key={d.destinationId}>
                          <Td>{d.name ?? shortId(d.destinationId)}</Td>
                          <Td className="num text-right">{formatSpeed(d.bytesPerSecond)}</Td>
                          <Td className="num text-right">{d.jobs}</Td>
                        </tr>
                      ))}
                    </tbody>
                  </Table>
                )}
              </Card>
              <Card aria-labelledby="rep-fail">
                <CardHeader id="rep-fail" title="Failures" />
                {r.failures.length === 0 ? (
                  <p className="p-4 text-sm text-slate-600">No failure in this period.</p>
                ) : (
                  <ul className="divide-y divide-slate-100">
                    {r.failures.map((f) => (
                      <li key={f.jobId} className="px-4 py-2 text-sm">
                        <Link to="/jobs/$jobId" params={{ jobId: f.jobId }} className="font-medium hover:underline">
                          job {shortId(f.jobId)}
                        </Link>{' '}
                        <span className="num text-xs text-slate-600">{formatTime(f.finishedAt)}</span>
                        <p className="break-words text-red-700">{f.error}</p>
                      </li>
                    ))}
                  </ul>
                )}
              </Card>
            </div>
          </div>
        )}
      </QueryState>
    </>
  );
}
