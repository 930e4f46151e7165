// Alerts: what needs a person (a failed job, an agent offline, an overdue plan, a failing destination),
// acknowledged by someone, resolved by themselves when the condition clears.
import { useQueryClient } from '@tanstack/react-query';
import { AlertTriangle, BellOff, CheckCheck, CircleCheck, HardDrive, Server, XCircle } from 'lucide-react';
import { useState } from 'react';
import { errorMessage } from '../api/client.ts';
import { keys, post, useAlerts } from '../api/queries.ts';
import type { Alert, AlertKind } from '../api/types.ts';
import { Badge } from '../components/ui/badge.tsx';
import { Button } from '../components/ui/button.tsx';
import { Card } from '../components/ui/card.tsx';
import { PageHeader } from '../components/ui/page.tsx';
import { Empty, QueryState } from '../components/ui/states.tsx';
import { useToast } from '../components/ui/toast.tsx';
import { cn } from '../lib/cn.ts';
import { formatAgo, formatTime } from '../lib/format.ts';

const KIND: Record<AlertKind, { label: string; icon: typeof Server }> = {
  'job-failed': { label: 'Job failed', icon: XCircle },
  'agent-offline': { label: 'Agent offline', icon: Server },
  'plan-overdue': { label: 'Plan overdue', icon: AlertTriangle },
  'destination-failing': { label: 'Destination failing', icon: HardDrive },
  'retention-failed': { label: 'Retention failed', icon: AlertTriangle },
};

function AlertRow({ alert }: { readonly alert: Alert }) {
  const client = useQueryClient();
  const toast = useToast();
  const [busy, setBusy] = useState(false);
  const kind = KIND[alert.kind];
  const Icon = kind.icon;
  const resolved = alert.resolvedAt !== null;
  const acknowledge = async (): Promise<void> => {
    setBusy(true);
    try {
      await post(`/api/alerts/${alert.id}/acknowledge`);
      toast.ok('Alert acknowledged');
      void client.invalidateQueries({ queryKey: ['alerts'] });
      void client.invalidateQueries({ queryKey: keys.overview });
    } catch (err) {
      toast.error(`Could not acknowledge: ${errorMessage(err)}`);
    } finally {
      setBusy(false);
    }
  };
  return (
    <li className="flex flex-col gap-2 px-4 py-3 sm:flex-row sm:items-center sm:gap-4" aria-label={`${kind.label}: ${alert.message}`}>
      <Icon className={cn('h-5 w-5 shrink-0', resolved ? 'text-slate-400' : alert.acknowledgedAt ? 'text-amber-600' : 'text-red-600')} aria-hidden="true" />
      <div className="min-w-0 flex-1">
        <div className="flex flex-wrap items-center gap-2">
          <span className="font-medium">{kind.label}</span>
          {resolved ? <Badge tone="green">resolved</Badge> : alert.acknowledgedAt ? <Badge tone="amber">acknowledged</Badge> : <Badge tone="red">open</Badge>}
        </div>
        <p className="text-sm break-words text-slate-800">{alert.message}</p>
        <p className="num text-xs text-slate-600">
          raised {formatAgo(alert.createdAt)} ({formatTime(alert.createdAt)})
          {alert.acknowledgedAt ? ` · acknowledged by ${alert.acknowledgedBy ?? 'someone'} ${formatAgo(alert.acknowledgedAt)}` : ''}
          {alert.resolvedAt ? ` · resolved ${formatAgo(alert.resolvedAt)}` : ''}
        </p>
      </div>
      <div className="sm:w-40 sm:text-right">
        {!alert.acknowledgedAt && !resolved ? (
          <Button size="sm" busy={busy} onClick={() => void acknowledge()} aria-label={`Acknowledge: ${alert.message}`}>
            <CheckCheck className="h-4 w-4" aria-hidden="true" />
            Acknowledge
          </Button>
        ) : null}
      </div>
    </li>
  );
}

export function AlertsPage() {
  const [state, setState] = useState<'open' | 'all'>('open');
  const alerts = useAlerts(state);
  return (
    <>
      <PageHeader title="Alerts" description="Raised when something needs attention; resolved by themselves when it is fixed." />
      <div role="group" aria-label="Show" className="mb-3 inline-flex rounded-md border border-slate-300 bg-white p-0.5">
        {(['open', 'all'] as const).map((s) => (
          <button key={s} type="button" aria-pressed={state === s} onClick={() => setState(s)} className={cn('rounded px-3 py-1 text-sm font-medium', state === s ? 'bg-slate-800 text-white' : 'text-slate-700 hover:bg-slate-100')}>
            {s === 'open' ? 'Open' : 'All, with resolved'}
          </button>
        ))}
      </div>
      <Card aria-label="Alerts">
        <QueryState query={alerts}>
          {(list) =>
            list.length === 0 ? (
              <Empty icon={state === 'open' ? <CircleCheck className="h-10 w-10 text-green-600" /> : <BellOff className="h-10 w-10" />} title={state === 'open' ? 'No open alert' : 'No alert yet'}>
                {state === 'open' ? 'Every agent is online and every plan is on time.' : 'Alerts appear here when a job fails after its retries, an agent goes offline, a plan is overdue or a destination fails its test-write.'}
              </Empty>
            ) : (
              <ul className="divide-y divide-slate-100">
                {list.map((a) => (
                  <AlertRow key={a.id} alert={a} />
                ))}
              </ul>
            )
          }
        </QueryState>
      </Card>
    </>
  );
}
