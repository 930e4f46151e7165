// Plans (what each agent backs up, where and when) with run-now, and the destinations they write to.
import { useQueryClient } from '@tanstack/react-query';
import { Link, useNavigate } from '@tanstack/react-router';
import { HardDrive, ListChecks, Pencil, Play, Plus, Trash2 } from 'lucide-react';
import { useState } from 'react';
import { errorMessage } from '../api/client.ts';
import { del, keys, useAgents, useDestinations, usePlans, useRunPlan } from '../api/queries.ts';
import type { Destination, Plan } from '../api/types.ts';
import { DestinationDialog } from '../components/destination-dialog.tsx';
import { TestWriteButton } from '../components/test-write.tsx';
import { Badge } from '../components/ui/badge.tsx';
import { Button } from '../components/ui/button.tsx';
import { Card, CardHeader } from '../components/ui/card.tsx';
import { Dialog } from '../components/ui/dialog.tsx';
import { PageHeader } from '../components/ui/page.tsx';
import { Empty, QueryState } from '../components/ui/states.tsx';
import { Table, Td, Th } from '../components/ui/table.tsx';
import { useToast } from '../components/ui/toast.tsx';
import { formatAgo, formatBytes } from '../lib/format.ts';

function RunButton({ plan }: { readonly plan: Plan }) {
  const run = useRunPlan();
  const toast = useToast();
  const navigate = useNavigate();
  return (
    <Button
      size="sm"
      variant="secondary"
      busy={run.isPending}
      aria-label={`Run ${plan.name} now`}
      onClick={() =>
        run.mutate(plan.id, {
          onSuccess: (job) => {
            toast.ok(`${plan.name} queued`);
            void navigate({ to: '/jobs/$jobId', params: { jobId: job.id } });
          },
          onError: (err) => toast.error(`Could not run ${plan.name}: ${errorMessage(err)}`),
        })
      }
    >
      <Play className="h-3.5 w-3.5" aria-hidden="true" />
      Run now
    </Button>
  );
}

function ConfirmDelete({ what, name, onConfirm, onClose, busy, children }: { readonly what: string; readonly name: string | undefined; readonly onConfirm: () => void; readonly onClose: () => void; readonly busy: boolean; readonly children: React.ReactNode }) {
  return (
    <Dialog
      open={name !== undefined}
      onClose={onClose}
      title={`Delete ${what} ${name ?? ''}?`}
      footer={
        <>
          <Button onClick={onClose}>Keep it</Button>
          <Button variant="danger" busy={busy} onClick={onConfirm}>
            Delete {what}
          </Button>
        </>
      }
    >
      <p className="text-sm text-slate-700">{children}</p>
    </Dialog>
  );
}

function PlansTable({ plans }: { readonly plans: readonly Plan[] }) {
  const agents = useAgents();
  const destinations = useDestinations();
  const client = useQueryClient();
  const toast = useToast();
  const [deleting, setDeleting] = useState<Plan | undefined>();
  const [busy, setBusy] = useState(false);
  const agentName = new Map(agents.data?.map((a) => [a.id, a.hostname]));
  const destName = new Map(destinations.data?.map((d) => [d.id, d.name]));
  const remove = async (): Promise<void> => {
    if (!deleting) return;
    setBusy(true);
    try {
      await del(`/api/plans/${deleting.id}`);
      toast.ok(`Plan ${deleting.name} deleted`);
      void client.invalidateQueries({ queryKey: keys.plans });
      setDeleting(undefined);
    } catch (err) {
      toast.error(`Could not delete ${deleting.name}: ${errorMessage(err)}`);
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <Table label="Plans">
        <thead>
          <tr>
            <Th>Plan</Th>
            <Th>Agent</Th>
            <Th>Backs up</Th>
            <Th>Destinations</Th>
            <Th>Schedule</Th>
            <Th>
              <span className="sr-only">Actions</span>
            </Th>
          </tr>
        </thead>
        <tbody>
          {plans.map((p) => (
            <tr key={p.id}>
              <Td>
                <Link to="/plans/$planId" params={{ planId: p.id }} className="font-medium text-slate-900 hover:underline">
                  {p.name}
                </Link>
                {!p.enabled ? (
                  <Badge tone="neutral" className="ml-2">
                    disabled
                  </Badge>
                ) : null}
              </Td>
              <Td className="whitespace-nowrap">{agentName.get(p.agentId) ?? '–'}</Td>
              <Td className="max-w-xs">
                <span className="block truncate font-mono text-xs" title={p.paths.join('\n')}>
                  {p.paths.join(', ')}
                </span>
                {p.sources?.length ? <span className="text-xs text-slate-600">+ {p.sources.length} database or command source{p.sources.length > 1 ? 's' : ''}</span> : null}
              </Td>
              <Td className="text-xs">{p.destinations.map((d) => destName.get(d) ?? '?').join(', ')}</Td>
              <Td className="font-mono text-xs whitespace-nowrap">{p.schedule ? `${p.schedule}${p.timezone ? ` (${p.timezone})` : ''}` : <span className="font-sans text-slate-600">manual</span>}</Td>
              <Td className="text-right whitespace-nowrap">
                <RunButton plan={p} />
                <Link to="/plans/$planId" params={{ planId: p.id }} aria-label={`Edit ${p.name}`} className="ml-1 inline-flex h-8 w-8 items-center justify-center rounded-md text-slate-700 hover:bg-slate-100">
                  <Pencil className="h-4 w-4" aria-hidden="true" />
                </Link>
                <Button size="icon" variant="ghost" aria-label={`Delete ${p.name}`} onClick={() => setDeleting(p)}>
                  <Trash2 className="h-4 w-4 text-red-700" aria-hidden="true" />
                </Button>
              </Td>
            </tr>
          ))}
        </tbody>
      </Table>
      <ConfirmDelete what="plan" name={deleting?.name} busy={busy} onClose={() => setDeleting(undefined)} onConfirm={() => void remove()}>
        Its schedule stops. Its history and its snapshots stay.
      </ConfirmDelete>
    </>
  );
}

function DestinationsCard() {
  const destinations = useDestinations();
  const plans = usePlans();
  const client = useQueryClient();
  const toast = useToast();
  const [editing, setEditing] = useState<Destination | 'new' | undefined>();
  const [deleting, setDeleting] = useState<Destination | undefined>();
  const [busy, setBusy] = useState(false);
  const remove = async (): Promise<void> => {
    if (!deleting) return;
    setBusy(true);
    try {
      await del(`/api/destinations/${deleting.id}`);
      toast.ok(`Destination ${deleting.name} removed`);
      void client.invalidateQueries({ queryKey: keys.destinations });
      setDeleting(undefined);
    } catch (err) {
      toast.error(`Could not remove ${deleting.name}: ${errorMessage(err)}`);
    } finally {
      setBusy(false);
    }
  };
  const agentOf = (d: Destination): string | undefined => plans.data?.find((p) => p.destinations.includes(d.id))?.agentId;
  return (
    <Card aria-labelledby="destinations-title" className="mt-6">
      <CardHeader
        id="destinations-title"
        title="Destinations"
        description="Where backups go. S3 credentials stay on this server: agents can add data but never delete it."
        actions={
          <Button onClick={() => setEditing('new')}>
            <Plus className="h-4 w-4" aria-hidden="true" />
            New destination
          </Button>
        }
      />
      <QueryState query={destinations}>
        {(list) =>
          list.length === 0 ? (
            <Empty icon={<HardDrive className="h-10 w-10" />} title="No destination yet">
              Add the bucket or disk your backups go to, then a plan that uses it.
            </Empty>
          ) : (
            <Table label="Destinations">
              <thead>
                <tr>
                  <Th>Name</Th>
                  <Th>Location</Th>
                  <Th>Limits</Th>
                  <Th>Last test</Th>
                  <Th>
                    <span className="sr-only">Actions</span>
                  </Th>
                </tr>
              </thead>
              <tbody>
                {list.map((d) => (
                  <tr key={d.id}>
                    <Td>
                      <span className="font-medium">{d.name}</span>
                      <Badge tone={d.kind === 's3' ? 'violet' : 'neutral'} className="ml-2">
                        {d.kind === 's3' ? 'S3, write-only' : 'agent path'}
                      </Badge>
                    </Td>
                    <Td className="max-w-xs">
                      <span className="block truncate font-mono text-xs" title={d.location}>
                        {d.location}
                      </span>
                    </Td>
                    <Td className="num text-xs whitespace-nowrap">
                      ↑ {d.uploadLimit ? `${formatBytes(d.uploadLimit)}/s` : '–'} ↓ {d.downloadLimit ? `${formatBytes(d.downloadLimit)}/s` : '–'}
                    </Td>
                    <Td className="text-xs">
                      {d.lastTestAt ? (
                        d.lastTestError ? (
                          <span className="text-red-700" title={d.lastTestError}>
                            failed {formatAgo(d.lastTestAt)}
                          </span>
                        ) : (
                          <span className="text-green-800">passed {formatAgo(d.lastTestAt)}</span>
                        )
                      ) : (
                        <span className="text-slate-600">not yet</span>
                      )}
                    </Td>
                    <Td className="text-right whitespace-nowrap">
                      <TestWriteButton destination={d} agentId={agentOf(d)} />
                      <Button size="icon" variant="ghost" className="ml-1" aria-label={`Edit ${d.name}`} onClick={() => setEditing(d)}>
                        <Pencil className="h-4 w-4" aria-hidden="true" />
                      </Button>
                      <Button size="icon" variant="ghost" aria-label={`Remove ${d.name}`} onClick={() => setDeleting(d)}>
                        <Trash2 className="h-4 w-4 text-red-700" aria-hidden="true" />
                      </Button>
                    </Td>
                  </tr>
                ))}
              </tbody>
            </Table>
          )
        }
      </QueryState>
      <DestinationDialog open={editing !== undefined} editing={editing === 'new' ? undefined : editing} onClose={() => setEditing(undefined)} />
      <ConfirmDelete what="destination" name={deleting?.name} busy={busy} onClose={() => setDeleting(undefined)} onConfirm={() => void remove()}>
        The server forgets it; the data stays in storage. A destination that a plan uses cannot be removed.
      </ConfirmDelete>
    </Card>
  );
}

export function PlansPage() {
  const plans = usePlans();
  const newButton = (
    <Link to="/plans/new" className="inline-flex h-9 items-center gap-2 rounded-md bg-brand-700 px-3.5 text-sm font-medium text-white hover:bg-brand-800">
      <Plus className="h-4 w-4" aria-hidden="true" />
      New plan
    </Link>
  );
  return (
    <>
      <PageHeader title="Plans" description="What each machine backs up, where, and when." actions={newButton} />
      <Card aria-label="Plans">
        <QueryState query={plans}>
          {(list) =>
            list.length === 0 ? (
              <Empty icon={<ListChecks className="h-10 w-10" />} title="No plan yet" action={newButton}>
                A plan names the folders (and databases) of one agent to back up, the destinations to write to, and a schedule.
              </Empty>
            ) : (
              <PlansTable plans={list} />
            )
          }
        </QueryState>
      </Card>
      <DestinationsCard />
    </>
  );
}
