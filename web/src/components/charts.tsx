// The two charts of the overview and the reports, on recharts: data added per day, and job outcomes per
// day. Each has a text summary for screen readers (a chart is a picture to them) and a fixed height, so
// the page does not move when the data arrives.
import { Bar, BarChart, CartesianGrid, Legend, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import type { DailyPoint } from '../api/dashboard-types.ts';
import { formatBytes } from '../lib/format.ts';

const dayLabel = (day: string): string => {
  const [y, m, d] = day.split('-').map(Number);
  return new Date(y!, m! - 1, d!).toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
};

export function DataAddedChart({ points }: { readonly points: readonly DailyPoint[] }) {
  const total = points.reduce((a, p) => a + p.bytesAdded, 0);
  const busiest = points.reduce<DailyPoint | undefined>((best, p) => (!best || p.bytesAdded > best.bytesAdded ? p : best), undefined);
  return (
    <figure className="m-0">
      <div className="h-56" aria-hidden="true">
        <ResponsiveContainer width="100%" height="100%">
          <BarChart data={points as DailyPoint[]} margin={{ top: 8, right: 8, bottom: 0, left: 8 }}>
            <CartesianGrid strokeDasharray="3 3" vertical={false} stroke="#e2e8f0" />
            <XAxis dataKey="day" tickFormatter={dayLabel} tick={{ fontSize: 11, fill: '#475569' }} minTickGap={16} />
            <YAxis tickFormatter={(v: number) => formatBytes(v)} tick={{ fontSize: 11, fill: '#475569' }} width={72} />
            <Tooltip formatter={(v) => [formatBytes(Number(v)), 'added']} labelFormatter={(l) => dayLabel(String(l))} />
            <Bar dataKey="bytesAdded" name="Data added" fill="#15803d" radius={[3, 3, 0, 0]} isAnimationActive={false} />
          </BarChart>
        </ResponsiveContainer>
      </div>
      <figcaption className="sr-only">
        Data added per day over {points.length} days: {formatBytes(total)} in all{busiest && busiest.bytesAdded > 0 ? `, most on ${dayLabel(busiest.day)} (${formatBytes(busiest.bytesAdded)})` : ''}.
      </figcaption>
    </figure>
  );
}

export function OutcomesChart({ points }: { readonly points: readonly DailyPoint[] }) {
  const sum = (k: keyof Omit<DailyPoint, 'day' | 'bytesAdded'>): number => points.reduce((a, p) => a + p[k], 0);
  return (
    <figure className="m-0">
      <div className="h-56" aria-hidden="true">
        <ResponsiveContainer width="100%" height="100%">
          <BarChart data={points as DailyPoint[]} margin={{ top: 8, right: 8, bottom: 0, left: 0 }}>
            <CartesianGrid strokeDasharray="3 3" vertical={false} stroke="#e2e8f0" />
            <XAxis dataKey="day" tickFormatter={dayLabel} tick={{ fontSize: 11, fill: '#475569' }} minTickGap={16} />
            <YAxis allowDecimals={false} tick={{ fontSize: 11, fill: '#475569' }} width={32} />
            <Tooltip labelFormatter={(l) => dayLabel(String(l))} />
            <Legend wrapperStyle={{ fontSize: 12 }} />
            <Bar dataKey="completed" name="Completed" stackId="a" fill="#16a34a" isAnimationActive={false} />
            <Bar dataKey="failed" name="Failed" stackId="a" fill="#dc2626" isAnimationActive={false} />
            <Bar dataKey="interrupted" name="Interrupted" stackId="a" fill="#f59e0b" isAnimationActive={false} />
            <Bar dataKey="cancelled" name="Cancelled" stackId="a" fill="#94a3b8" isAnimationActive={false} />
          </BarChart>
        </ResponsiveContainer>
      </div>
      <figcaption className="sr-only">
        Job outcomes over {points.length} days: {sum('completed')} completed, {sum('failed')} failed, {sum('interrupted')} interrupted, {sum('cancelled')} cancelled.
      </figcaption>
    </figure>
  );
}
