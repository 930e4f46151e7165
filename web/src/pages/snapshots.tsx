// Snapshots: the list per destination, grouped by plan; a browser that reads one directory per request
// (so a snapshot of 100 000 files opens as fast as one of ten), a page of a folder at a time with a
// filter by name that the agent applies (so a folder of 20 000 entries stays quick); a diff between two snapshots; and a
// selection of files and folders to restore onto an agent or download as a tar.
import { getRouteApi, useNavigate } from '@tanstack/react-router';
import { Archive, ChevronLeft, ChevronRight, Download, File, FileSymlink, Folder, GitCompare, HardDriveDownload, Home, Search, X } from 'lucide-react';
import { useEffect, useMemo, useRef, useState, type FormEvent } from 'react';
import { errorMessage } from '../api/client.ts';
import type { ChangeKind, SnapshotInfo, TreeEntry, TreePage } from '../api/dashboard-types.ts';
import { post, useAgents, useDestinations, usePlans } from '../api/queries.ts';
import { joinPath, parentOf, requestDownload, useDiff, usePrefetchTree, useSnapshotList, useTree, type RepoRef } from '../api/snapshots.ts';
import type { Job } from '../api/types.ts';
import { Badge } from '../components/ui/badge.tsx';
import { Button } from '../components/ui/button.tsx';
import { Card, CardHeader } from '../components/ui/card.tsx';
import { Dialog } from '../components/ui/dialog.tsx';
import { Field, Input, Select } from '../components/ui/field.tsx';
import { PageHeader } from '../components/ui/page.tsx';
import { Empty, ErrorBox, Loading, QueryState } from '../components/ui/states.tsx';
import { Table, Td, Th } from '../components/ui/table.tsx';
import { useToast } from '../components/ui/toast.tsx';
import { cn } from '../lib/cn.ts';
import { formatBytes, formatCount, formatTime, shortId } from '../lib/format.ts';

const route = getRouteApi('/app/snapshots');

export interface SnapshotsSearch {
  destination?: string;
  agent?: string;
  snapshot?: string;
  path?: string;
  compare?: string;
}

export function parseSnapshotsSearch(s: Record<string, unknown>): SnapshotsSearch {
  const out: SnapshotsSearch = {};
  for (const k of ['destination', 'agent', 'snapshot', 'compare'] as const) if (typeof s[k] === 'string' && s[k]) out[k] = s[k] as string;
  if (typeof s.path === 'string' && s.path.startsWith('/')) out.path = s.path;
  return out;
}

function RepoPicker({ search }: { readonly search: SnapshotsSearch }) {
  const destinations = useDestinations();
  const agents = useAgents();
  const plans = usePlans();
  const navigate = useNavigate();
  const go = (patch: Partial<SnapshotsSearch>): void => void navigate({ to: '/snapshots', search: { ...search, snapshot: undefined, path: undefined, compare: undefined, ...patch } });
  // Until chosen: the first destination, and the agent of a plan writing to it (an online one if possible).
  useEffect(() => {
    if (!destinations.data || !agents.data || !plans.data) return;
    const destination = search.destination ?? destinations.data[0]?.id;
    if (!destination) return;
    if (search.destination && search.agent) return;
    const users = new Set(plans.data.filter((p) => p.destinations.includes(destination)).map((p) => p.agentId));
    const candidates = agents.data.filter((a) => users.size === 0 || users.has(a.id));
    const agent = search.agent ?? (candidates.find((a) => a.status === 'online') ?? candidates[0] ?? agents.data[0])?.id;
    if (agent) void navigate({ to: '/snapshots', search: { ...search, destination, agent }, replace: true });
  }, [destinations.data, agents.data, plans.data, search, navigate]);
  return (
    <Card className="mb-4 p-4" aria-label="Repository">
      <div className="grid gap-3 sm:grid-cols-2">
        <Field label="Destination">
          {(p) => (
            <Select {...p} value={search.destination ?? ''} onChange={(e) => go({ destination: e.target.value })}>
              {destinations.data?.map((d) => (
                <option key={d.id} value={d.id}>
                  {d.name}
                </option>
              ))}
            </Select>
          )}
        </Field>
        <Field label="Read through agent" hint="Snapshots are encrypted; an agent with the passphrase reads them for you.">
          {(p) => (
            <Select {...p} value={search.agent ?? ''} onChange={(e) => go({ agent: e.target.value, destination: search.destination })}>
              {agents.data?.map((a) => (
                <option key={a.id} value={a.id}>
                  {a.hostname} ({a.status})
                </option>
              ))}
            </Select>
          )}
        </Field>
      </div>
    </Card>
  );
}

function SnapshotTable({ repo, search, snapshots }: { readonly repo: RepoRef; readonly search: SnapshotsSearch; readonly snapshots: readonly SnapshotInfo[] }) {
  const navigate = useNavigate();
  const [plan, setPlan] = useState('');
  const plans = [...new Set(snapshots.map((s) => s.planName ?? ''))].sort();
  const shown = snapshots.filter((s) => plan === '' || (s.planName ?? '') === plan);
  const groups = new Map<string, SnapshotInfo[]>();
  for (const s of shown) groups.set(s.planName ?? '', [...(groups.get(s.planName ?? '') ?? []), s]);
  const open = (s: SnapshotInfo): void => void navigate({ to: '/snapshots', search: { destination: repo.destination, agent: repo.agent, snapshot: s.id, path: '/' } });
  const compare = (s: SnapshotInfo): void => void navigate({ to: '/snapshots', search: { ...search, compare: s.id } });
  return (
    <Card aria-labelledby="snap-list-title" className="mb-4">
      <CardHeader
        id="snap-list-title"
        title="Snapshots"
        description={`${snapshots.length} in this repository, newest first.${search.snapshot ? ' Choose “Compare” on another row to see what changed.' : ''}`}
        actions={
          plans.length > 1 ? (
            <Field label={<span className="sr-only">Plan</span>}>
              {(p) => (
                <Select {...p} value={plan} onChange={(e) => setPlan(e.target.value)} className="w-48">
                  <option value="">All plans</option>
                  {plans.map((name) => (
                    <option key={name} value={name}>
                      {name || 'Not from a plan'}
                    </option>
                  ))}
                </Select>
              )}
            </Field>
          ) : undefined
        }
      />
      <div className="max-h-[26rem] overflow-y-auto">
        <Table label="Snapshots">
          <thead className="sticky top-0">
            <tr>
              <Th>Time</Th>
              <Th>Id</Th>
              <Th>Host</Th>
              <Th className="text-right">Files</Th>
              <Th className="text-right">Size</Th>
              <Th className="text-right">Added</Th>
              <Th>
                <span className="sr-only">Actions</span>
              </Th>
            </tr>
          </thead>
          {[...groups].map(([name, list]) => (
            <tbody key={name}>
              <tr>
                <th scope="rowgroup" colSpan={7} className="bg-slate-100/70 px-3 py-1.5 text-left text-xs font-semibold text-slate-700">
                  {name ? `Plan ${name}` : 'Not from a plan of this server'} <span className="font-normal">({list.length})</span>
                </th>
              </tr>
              {list.map((s) => {
                const selected = s.id === search.snapshot;
                const compared = s.id === search.compare;
                return (
                  <tr key={s.id} className={cn(selected && 'bg-brand-50', compared && 'bg-violet-50')} aria-selected={selected || undefined}>
                    <Td className="num whitespace-nowrap">{formatTime(s.time)}</Td>
                    <Td className="font-mono text-xs">{shortId(s.id)}</Td>
                    <Td className="whitespace-nowrap">{s.host}</Td>
                    <Td className="num text-right">{formatCount(s.totalFiles)}</Td>
                    <Td className="num text-right whitespace-nowrap">{formatBytes(s.totalBytes)}</Td>
                    <Td className="num text-right whitespace-nowrap">{formatBytes(s.bytesAdded)}</Td>
                    <Td className="text-right whitespace-nowrap">
                      <Button size="sm" variant={selected ? 'primary' : 'secondary'} onClick={() => open(s)} aria-label={`Browse snapshot ${shortId(s.id)} of ${formatTime(s.time)}`}>
                        Browse
                      </Button>
                      {search.snapshot && !selected ? (
                        <Button size="sm" variant="ghost" className="ml-1" onClick={() => compare(s)} aria-label={`Compare with snapshot ${shortId(s.id)}`}>
                          <GitCompare className="h-3.5 w-3.5" aria-hidden="true" />
                          Compare
                        </Button>
                      ) : null}
                    </Td>
                  </tr>
                );
              })}
            </tbody>
          ))}
        </Table>
      </div>
    </Card>
  );
}

function Breadcrumbs({ path, onGo }: { readonly path: string; readonly onGo: (path: string) => void }) {
  const parts = path.split('/').filter(Boolean);
  return (
    <nav aria-label="Folder path" className="flex min-w-0 flex-wrap items-center gap-0.5 text-sm">
      <button type="button" onClick={() => onGo('/')} className="inline-flex items-center gap-1 rounded px-1.5 py-0.5 hover:bg-slate-100" aria-label="Top of the snapshot">
        <Home className="h-4 w-4" aria-hidden="true" />
      </button>
      {parts.map((part, i) => {
        const target = `/${parts.slice(0, i + 1).join('/')}`;
        const last = i === parts.length - 1;
        return (
          <span key={target} className="inline-flex min-w-0 items-center gap-0.5">
            <ChevronRight className="h-3.5 w-3.5 shrink-0 text-slate-400" aria-hidden="true" />
            {last ? (
              <span aria-current="location" className="truncate px-1.5 py-0.5 font-medium">
                {part}
              </span>
            ) : (
              <button type="button" onClick={() => onGo(target)} className="truncate rounded px-1.5 py-0.5 hover:bg-slate-100">
                {part}
              </button>
            )}
          </span>
        );
      })}
    </nav>
  );
}

const ENTRY_ICON = { dir: Folder, file: File, symlink: FileSymlink, other: File } as const;

/** The rows of one page of a folder (a loading or error row until it is read). */
function DirectoryRows({ tree, path, selected, toggle, onOpen, prefetch }: { readonly tree: ReturnType<typeof useTree>; readonly path: string; readonly selected: ReadonlySet<string>; readonly toggle: (path: string, on: boolean) => void; readonly onOpen: (path: string) => void; readonly prefetch: (path: string) => void }) {
  if (!tree.data) {
    return (
      <tbody>
        <tr>
          <td colSpan={4}>{tree.error ? <ErrorBox className="m-3" error={tree.error} retry={() => void tree.refetch()} /> : <Loading label="Reading the folder…" />}</td>
        </tr>
      </tbody>
    );
  }
  const page = tree.data;
  return (
    <tbody aria-busy={tree.isPlaceholderData || undefined} className={cn(tree.isPlaceholderData && 'opacity-60')}>
      {page.entries.length === 0 ? (
        <tr>
          <td colSpan={4} className="px-3 py-6 text-center text-sm text-slate-600">
            {page.matches !== undefined ? 'No name in this folder holds that text.' : 'This folder is empty.'}
          </td>
        </tr>
      ) : null}
      {page.entries.map((e: TreeEntry) => {
        const full = joinPath(path, e.name);
        const Icon = ENTRY_ICON[e.type];
        return (
          <tr key={full} className={cn('hover:bg-slate-50', selected.has(full) && 'bg-brand-50')}>
            <Td className="w-10">
              <input type="checkbox" className="h-4 w-4 accent-brand-700" checked={selected.has(full)} onChange={(ev) => toggle(full, ev.target.checked)} aria-label={`Select ${e.name}`} />
            </Td>
            <Td className="max-w-0 min-w-40">
              {e.type === 'dir' ? (
                <button type="button" className="flex w-full min-w-0 items-center gap-2 text-left font-medium text-slate-900 hover:underline" onClick={() => onOpen(full)} onMouseEnter={() => prefetch(full)} onFocus={() => prefetch(full)}>
                  <Icon className="h-4 w-4 shrink-0 text-amber-500" aria-hidden="true" />
                  <span className="truncate">{e.name}</span>
                  <span className="sr-only">, folder</span>
                </button>
              ) : (
                <span className="flex min-w-0 items-center gap-2" title={e.target ? `→ ${e.target}` : undefined}>
                  <Icon className="h-4 w-4 shrink-0 text-slate-400" aria-hidden="true" />
                  <span className="truncate">{e.name}</span>
                </span>
              )}
            </Td>
            <Td className="num w-24 text-right whitespace-nowrap">{e.type === 'file' ? formatBytes(e.size) : ''}</Td>
            <Td className="num hidden w-44 whitespace-nowrap text-slate-600 sm:table-cell">{formatTime(e.mtime)}</Td>
          </tr>
        );
      })}
    </tbody>
  );
}

/** Which entries of the folder are shown, and the way to the other pages. */
function Pager({ page, onPrevious, onNext }: { readonly page: TreePage; readonly onPrevious?: (() => void) | undefined; readonly onNext?: (() => void) | undefined }) {
  const shown = page.entries.length === 0 ? '' : `${formatCount(page.offset + 1)}–${formatCount(page.offset + page.entries.length)}`;
  const text =
    page.matches !== undefined
      ? `${formatCount(page.matches)} of ${formatCount(page.total)} ${page.total === 1 ? 'entry matches' : 'entries match'}${shown && page.matches > page.entries.length ? `; showing ${shown}` : ''}`
      : shown
        ? `Entries ${shown} of ${formatCount(page.total)}`
        : '';
  return (
    <div className="flex min-h-12 flex-wrap items-center justify-between gap-2 px-4 py-2">
      <p className="num text-sm text-slate-700" aria-live="polite">
        {text}
      </p>
      {onPrevious || onNext ? (
        <div className="flex gap-2">
          <Button size="sm" disabled={!onPrevious} onClick={onPrevious}>
            <ChevronLeft className="h-4 w-4" aria-hidden="true" />
            Previous page
          </Button>
          <Button size="sm" disabled={!onNext} onClick={onNext}>
            Next page
            <ChevronRight className="h-4 w-4" aria-hidden="true" />
          </Button>
        </div>
      ) : null}
    </div>
  );
}

function RestoreDialog({ open, onClose, repo, snapshot, paths }: { readonly open: boolean; readonly onClose: () => void; readonly repo: RepoRef; readonly snapshot: SnapshotInfo; readonly paths: readonly string[] }) {
  const agents = useAgents();
  const toast = useToast();
  const navigate = useNavigate();
  const [agent, setAgent] = useState(repo.agent);
  const [target, setTarget] = useState(`/var/tmp/coffer-restore-${shortId(snapshot.id)}`);
  const [error, setError] = useState<string | undefined>();
  const [failure, setFailure] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent): Promise<void> => {
    e.preventDefault();
    setFailure(undefined);
    if (!target.startsWith('/')) return setError('An absolute path on the agent, starting with /.');
    setError(undefined);
    setBusy(true);
    try {
      const job = await post<Job>('/api/restores', { agentId: agent, destinationId: repo.destination, snapshot: snapshot.id, target, include: paths });
      toast.ok(`Restoring ${paths.length} item${paths.length === 1 ? '' : 's'} to ${target}`);
      onClose();
      void navigate({ to: '/jobs/$jobId', params: { jobId: job.id } });
    } catch (err) {
      setFailure(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog
      open={open}
      onClose={onClose}
      title="Restore to an agent"
      description={`${paths.length} selected item${paths.length === 1 ? '' : 's'} from snapshot ${shortId(snapshot.id)} of ${formatTime(snapshot.time)}, with their folders.`}
      footer={
        <>
          <Button onClick={onClose}>Cancel</Button>
          <Button type="submit" form="restore-form" variant="primary" busy={busy}>
            <HardDriveDownload className="h-4 w-4" aria-hidden="true" />
            Restore
          </Button>
        </>
      }
    >
      <form id="restore-form" noValidate onSubmit={(e) => void submit(e)} className="space-y-4">
        <Field label="Agent">
          {(p) => (
            <Select {...p} value={agent} onChange={(e) => setAgent(e.target.value)}>
              {agents.data?.map((a) => (
                <option key={a.id} value={a.id}>
                  {a.hostname} ({a.status})
                </option>
              ))}
            </Select>
          )}
        </Field>
        <Field label="Into folder" error={error} hint="Files keep their full path below it (…/home/ann/file). Existing files there are overwritten.">
          {(p) => <Input {...p} className="font-mono" value={target} onChange={(e) => setTarget(e.target.value)} />}
        </Field>
        <ul className="max-h-32 overflow-y-auto rounded-md border border-slate-200 bg-slate-50 p-2 font-mono text-xs">
          {paths.map((p) => (
            <li key={p} className="truncate">
              {p}
            </li>
          ))}
        </ul>
        {failure ? <ErrorBox error={failure} title="Could not start the restore" /> : null}
      </form>
    </Dialog>
  );
}

function Browser({ repo, snapshot, path }: { readonly repo: RepoRef; readonly snapshot: SnapshotInfo; readonly path: string }) {
  const navigate = useNavigate();
  const toast = useToast();
  const [selected, setSelected] = useState<Set<string>>(new Set());
  // The pages before the one shown (the name each starts after), and the filter typed and the one asked.
  const [afters, setAfters] = useState<(string | undefined)[]>([]);
  const [after, setAfter] = useState<string | undefined>();
  const [typed, setTyped] = useState('');
  const [filter, setFilter] = useState('');
  const [restoring, setRestoring] = useState(false);
  const [downloading, setDownloading] = useState(false);
  const heading = useRef<HTMLHeadingElement>(null);
  const tree = useTree(repo, snapshot.id, path, { after, filter });
  const prefetch = usePrefetchTree(repo, snapshot.id);
  const toPage = (stack: (string | undefined)[], at: string | undefined): void => {
    setAfters(stack);
    setAfter(at);
  };
  useEffect(() => {
    toPage([], undefined);
    setTyped('');
    setFilter('');
  }, [path, snapshot.id]);
  // Asked once typing pauses, each filter from the first page.
  useEffect(() => {
    const t = setTimeout(() => {
      setFilter(typed.trim());
      toPage([], undefined);
    }, 250);
    return () => clearTimeout(t);
  }, [typed]);
  useEffect(() => {
    setSelected(new Set());
    // Opened from the list below (or a link): the keyboard goes on from the snapshot, not from the end of the page.
    heading.current?.focus();
  }, [snapshot.id]);
  const go = (to: string): void => {
    void navigate({ to: '/snapshots', search: (s: SnapshotsSearch) => ({ ...s, path: to }) });
    heading.current?.focus();
  };
  const toggle = (p: string, on: boolean): void =>
    setSelected((old) => {
      const next = new Set(old);
      if (on) next.add(p);
      else next.delete(p);
      return next;
    });
  const chosen = [...selected].sort();
  const download = async (): Promise<void> => {
    setDownloading(true);
    try {
      const url = await requestDownload(repo, snapshot.id, chosen);
      const a = document.createElement('a');
      a.href = url;
      a.download = '';
      document.body.append(a);
      a.click();
      a.remove();
      toast.ok('The download starts: the agent streams the tar as it reads it.');
    } catch (err) {
      toast.error(`Could not download: ${errorMessage(err)}`);
    } finally {
      setDownloading(false);
    }
  };
  return (
    <Card aria-labelledby="browser-title" className="mb-4">
      <div className="flex flex-wrap items-center justify-between gap-2 border-b border-slate-100 px-4 py-3">
        <div className="min-w-0">
          <h2 id="browser-title" ref={heading} tabIndex={-1} className="text-base font-semibold outline-none">
            Snapshot {shortId(snapshot.id)} <span className="num font-normal text-slate-600">of {formatTime(snapshot.time)}</span>
          </h2>
          <Breadcrumbs path={path} onGo={go} />
        </div>
        <Button size="sm" variant="ghost" onClick={() => void navigate({ to: '/snapshots', search: { destination: repo.destination, agent: repo.agent } })} aria-label="Close the snapshot">
          <X className="h-4 w-4" aria-hidden="true" />
        </Button>
      </div>
      {/* The action bar is always there, so choosing files does not push the list down. */}
      <div className="sticky top-12 z-10 flex min-h-12 flex-wrap items-center gap-2 border-b border-slate-100 bg-white/95 px-4 py-2 md:top-0" role="region" aria-label="Selection">
        <span className="num text-sm text-slate-700" aria-live="polite">
          {chosen.length === 0 ? 'Select files and folders to restore or download.' : `${chosen.length} selected`}
        </span>
        <div className="ml-auto flex flex-wrap gap-2">
          <Button size="sm" variant="primary" disabled={chosen.length === 0} onClick={() => setRestoring(true)}>
            <HardDriveDownload className="h-4 w-4" aria-hidden="true" />
            Restore to agent…
          </Button>
          <Button size="sm" disabled={chosen.length === 0} busy={downloading} onClick={() => void download()}>
            <Download className="h-4 w-4" aria-hidden="true" />
            Download as tar
          </Button>
          {chosen.length > 0 ? (
            <Button size="sm" variant="ghost" onClick={() => setSelected(new Set())}>
              Clear
            </Button>
          ) : null}
        </div>
      </div>
      <div className="flex flex-wrap items-center gap-2 border-b border-slate-100 px-4 py-2">
        <label className="relative block w-full sm:w-72">
          <span className="sr-only">Filter this folder by name</span>
          <Search className="pointer-events-none absolute top-2.5 left-2.5 h-4 w-4 text-slate-400" aria-hidden="true" />
          <Input type="search" value={typed} onChange={(e) => setTyped(e.target.value)} placeholder="Filter this folder by name" className="pl-8" />
        </label>
        {tree.data ? (
          <span className="num text-sm text-slate-600">
            {formatCount(tree.data.total)} {tree.data.total === 1 ? 'entry' : 'entries'}
          </span>
        ) : null}
      </div>
      <Table label={`Contents of ${path}`}>
        <thead>
          <tr>
            <Th className="w-10">
              <span className="sr-only">Selected</span>
            </Th>
            <Th>Name</Th>
            <Th className="text-right">Size</Th>
            <Th className="hidden sm:table-cell">Modified</Th>
          </tr>
        </thead>
        {path !== '/' && after === undefined ? (
          <tbody>
            <tr>
              <Td />
              <Td colSpan={3}>
                <button type="button" onClick={() => go(parentOf(path))} className="flex items-center gap-2 text-slate-700 hover:underline">
                  <Folder className="h-4 w-4 text-slate-400" aria-hidden="true" />
                  .. <span className="sr-only">(parent folder)</span>
                </button>
              </Td>
            </tr>
          </tbody>
        ) : null}
        <DirectoryRows tree={tree} path={path} selected={selected} toggle={toggle} onOpen={go} prefetch={prefetch} />
      </Table>
      {tree.data && (tree.data.next !== undefined || afters.length > 0 || tree.data.matches !== undefined) ? (
        <Pager
          page={tree.data}
          onPrevious={afters.length > 0 ? () => toPage(afters.slice(0, -1), afters[afters.length - 1]) : undefined}
          onNext={tree.data.next !== undefined && !tree.isPlaceholderData ? () => toPage([...afters, after], tree.data.next) : undefined}
        />
      ) : null}
      <RestoreDialog open={restoring} onClose={() => setRestoring(false)} repo={repo} snapshot={snapshot} paths={chosen} />
    </Card>
  );
}

const CHANGE: Record<ChangeKind, { label: string; tone: 'green' | 'red' | 'blue' | 'amber' | 'neutral' }> = {
  '+': { label: 'added', tone: 'green' },
  '-': { label: 'removed', tone: 'red' },
  M: { label: 'modified', tone: 'blue' },
  T: { label: 'type changed', tone: 'amber' },
  U: { label: 'metadata', tone: 'neutral' },
};

function DiffPanel({ repo, from, to, onClose }: { readonly repo: RepoRef; readonly from: SnapshotInfo; readonly to: SnapshotInfo; readonly onClose: () => void }) {
  // Older to newer, whichever was chosen first.
  const [a, b] = from.time <= to.time ? [from, to] : [to, from];
  const diff = useDiff(repo, a.id, b.id);
  return (
    <Card aria-labelledby="diff-title" className="mb-4">
      <CardHeader
        id="diff-title"
        title={`Changes from ${shortId(a.id)} to ${shortId(b.id)}`}
        description={`${formatTime(a.time)} → ${formatTime(b.time)}`}
        actions={
          <Button size="sm" variant="ghost" onClick={onClose} aria-label="Close the comparison">
            <X className="h-4 w-4" aria-hidden="true" />
          </Button>
        }
      />
      <QueryState query={diff} loading={<Loading label="Comparing the two snapshots…" />}>
        {(d) => (
          <>
            <p className="flex flex-wrap gap-2 px-4 pt-3 text-sm">
              {(Object.keys(CHANGE) as ChangeKind[]).map((k) => (
                <Badge key={k} tone={CHANGE[k].tone}>
                  <span className="num">{formatCount(d.counts[k] ?? 0)}</span> {CHANGE[k].label}
                </Badge>
              ))}
            </p>
            {d.changes.length === 0 ? (
              <p className="p-4 text-sm text-slate-600">No difference: the two snapshots hold the same files.</p>
            ) : (
              <ul className="mt-2 max-h-96 overflow-y-auto border-t border-slate-100 font-mono text-xs" aria-label="Changes">
                {d.changes.map((c, i) => (
                  <li key={`${i}:${c.path}`} className="flex items-center gap-2 border-b border-slate-50 px-4 py-1">
                    <Badge tone={CHANGE[c.kind].tone} className="w-24 justify-center font-sans">
                      {CHANGE[c.kind].label}
                    </Badge>
                    <span className="truncate" title={c.path}>
                      {c.path}
                    </span>
                    <span className="num ml-auto shrink-0 text-slate-600">{c.type === 'file' && c.kind !== '-' ? formatBytes(c.size) : ''}</span>
                  </li>
                ))}
              </ul>
            )}
            {d.truncated ? <p className="px-4 py-2 text-xs text-slate-600">Only the first {formatCount(d.changes.length)} changes are listed; the counts above are complete.</p> : null}
          </>
        )}
      </QueryState>
    </Card>
  );
}

export function SnapshotsPage() {
  const search = route.useSearch();
  const navigate = useNavigate();
  const destinations = useDestinations();
  const repo = useMemo(() => (search.destination && search.agent ? { destination: search.destination, agent: search.agent } : undefined), [search.destination, search.agent]);
  const list = useSnapshotList(repo);
  const snapshots = list.data?.snapshots ?? [];
  const current = snapshots.find((s) => s.id === search.snapshot || s.id.startsWith(search.snapshot ?? '\0'));
  const compared = snapshots.find((s) => s.id === search.compare);
  return (
    <>
      <PageHeader title="Snapshots" description="Browse what was backed up, compare two snapshots, restore or download files." />
      {destinations.data?.length === 0 ? (
        <Card>
          <Empty icon={<Archive className="h-10 w-10" />} title="No destination yet">
            Snapshots live in destinations. Add one on the Plans page, and a plan that writes to it.
          </Empty>
        </Card>
      ) : (
        <>
          <RepoPicker search={search} />
          {repo ? (
            <QueryState query={list} loading={<Loading label="Asking the agent for the snapshot list…" />}>
              {() =>
                snapshots.length === 0 ? (
                  <Card>
                    <Empty icon={<Archive className="h-10 w-10" />} title="No snapshot in this destination yet">
                      Run a plan that writes here, then come back.
                    </Empty>
                  </Card>
                ) : (
                  <>
                    {current && compared ? <DiffPanel repo={repo} from={current} to={compared} onClose={() => void navigate({ to: '/snapshots', search: { ...search, compare: undefined } })} /> : null}
                    {current ? <Browser repo={repo} snapshot={current} path={search.path ?? '/'} /> : null}
                    <SnapshotTable repo={repo} search={search} snapshots={snapshots} />
                  </>
                )
              }
            </QueryState>
          ) : null}
        </>
      )}
    </>
  );
}
