// Creating and editing a plan: sources (folders, and database dumps or commands streamed into the
// snapshot), excludes, destinations with a test-write, the schedule with its next runs, retention,
// hooks and notifications. Problems are shown beside their field: found here before sending, or named
// by the server's answer.
import { useQueryClient } from '@tanstack/react-query';
import { useNavigate, useParams } from '@tanstack/react-router';
import { Plus, Trash2 } from 'lucide-react';
import { useMemo, useRef, useState, type FormEvent, type ReactNode } from 'react';
import { nextSlot, parseSchedule, ScheduleError } from '../../../src/config/schedule.ts';
import { ApiError } from '../api/client.ts';
import { keys, post, put, useAgents, useDestinations, usePlan } from '../api/queries.ts';
import type { Hook, Hooks, Notify, Plan, Retention, Source } from '../api/types.ts';
import { DestinationDialog } from '../components/destination-dialog.tsx';
import { TestWriteButton } from '../components/test-write.tsx';
import { Button } from '../components/ui/button.tsx';
import { Card, CardBody, CardHeader } from '../components/ui/card.tsx';
import { Checkbox, Field, Input, Select, Textarea } from '../components/ui/field.tsx';
import { PageHeader } from '../components/ui/page.tsx';
import { ErrorBox, Loading } from '../components/ui/states.tsx';
import { useToast } from '../components/ui/toast.tsx';
import { formatTime } from '../lib/format.ts';

type Errors = Record<string, string>;

const HOOKS = [
  { id: 'before', label: 'Before the backup', hint: 'A failure or time-out stops the run.' },
  { id: 'after', label: 'After the backup', hint: 'Runs whatever the outcome.' },
  { id: 'onSuccess', label: 'On success', hint: '' },
  { id: 'onFailure', label: 'On failure', hint: '' },
] as const;

const KEEP = [
  { id: 'keepLast', label: 'Last' },
  { id: 'keepHourly', label: 'Hourly' },
  { id: 'keepDaily', label: 'Daily' },
  { id: 'keepWeekly', label: 'Weekly' },
  { id: 'keepMonthly', label: 'Monthly' },
  { id: 'keepYearly', label: 'Yearly' },
] as const;

const NOTIFY_EVENTS = [
  { id: 'failure', label: 'a run fails (after its retries)' },
  { id: 'recovery', label: 'it works again after a failure' },
  { id: 'overdue', label: 'no success for too long' },
  { id: 'test-write', label: 'a destination fails its test-write' },
] as const;

const PRESETS = [
  { label: 'Manual only', cron: '' },
  { label: 'Every hour', cron: '0 * * * *' },
  { label: 'Every day at 02:00', cron: '0 2 * * *' },
  { label: 'Every 6 hours', cron: '0 */6 * * *' },
  { label: 'Every Sunday at 03:00', cron: '0 3 * * 0' },
];

interface Draft {
  name: string;
  agentId: string;
  enabled: boolean;
  paths: string;
  excludes: string;
  tags: string;
  oneFileSystem: boolean;
  destinations: string[];
  schedule: string;
  timezone: string;
  sources: Source[];
  hooks: Record<(typeof HOOKS)[number]['id'], { command: string; timeout: string }>;
  retention: Record<(typeof KEEP)[number]['id'], string>;
  /** The plan's other retention rules (keepWithin…, keepTag, groupBy: set through the API), which this form does not show and keeps as they are. */
  retentionOther: Retention;
  emails: string;
  webhooks: string;
  notifyOn: string[];
  /** A passphrase to give the server (empty: leave it as it is); never filled from the server. */
  passphrase: string;
  clearPassphrase: boolean;
  /** Who backs the plan up: its agent alone, N of the owner's online agents, or every agent with a label. */
  scale: 'one' | 'count' | 'label';
  workers: string;
  workerLabel: string;
  allowPartial: boolean;
}

const lines = (text: string): string[] =>
  text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);

function draftOf(plan: Plan | undefined): Draft {
  const hook = (h: Hook | undefined) => ({ command: h?.command ?? '', timeout: h?.timeout ?? '' });
  return {
    name: plan?.name ?? '',
    agentId: plan?.agentId ?? '',
    enabled: plan?.enabled ?? true,
    paths: plan?.paths.join('\n') ?? '',
    excludes: plan?.excludes.join('\n') ?? '',
    tags: plan?.tags.join(', ') ?? '',
    oneFileSystem: plan?.oneFileSystem ?? false,
    destinations: plan?.destinations ?? [],
    schedule: plan?.schedule ?? '',
    timezone: plan?.timezone ?? '',
    sources: plan?.sources ?? [],
    hooks: { before: hook(plan?.hooks?.before), after: hook(plan?.hooks?.after), onSuccess: hook(plan?.hooks?.onSuccess), onFailure: hook(plan?.hooks?.onFailure) },
    retention: Object.fromEntries(KEEP.map((k) => [k.id, plan?.retention?.[k.id]?.toString() ?? ''])) as Draft['retention'],
    retentionOther: Object.fromEntries(Object.entries(plan?.retention ?? {}).filter(([rule]) => !KEEP.some((k) => k.id === rule))),
    emails: plan?.notify?.email?.join(', ') ?? '',
    webhooks: plan?.notify?.webhooks?.join('\n') ?? '',
    notifyOn: plan?.notify?.on ?? [],
    passphrase: '',
    clearPassphrase: false,
    scale: plan?.workerLabel !== undefined ? 'label' : plan?.workers !== undefined ? 'count' : 'one',
    workers: plan?.workers?.toString() ?? '3',
    workerLabel: plan?.workerLabel ?? '',
    allowPartial: plan?.allowPartial ?? false,
  };
}

/** What the form says, as the API takes it, and the problems found before sending. */
function bodyOf(d: Draft): { body: Record<string, unknown>; errors: Errors } {
  const errors: Errors = {};
  if (!/^[\w.-]{1,100}$/.test(d.name)) errors.name = 'Use letters, digits, dot, dash and underscore (no spaces), up to 100.';
  if (!d.agentId) errors.agentId = 'Choose the agent (machine) that runs this plan.';
  const paths = lines(d.paths);
  if (paths.length === 0 && d.sources.length === 0) errors.paths = 'Give at least one folder to back up, or add a database or command source below.';
  for (const p of paths) if (!p.startsWith('/')) errors.paths = `"${p}" is not an absolute path; paths on the agent start with /.`;
  if (d.destinations.length === 0) errors.destinations = 'Choose at least one destination.';
  if (d.schedule.trim()) {
    try {
      parseSchedule({ cron: d.schedule.trim(), ...(d.timezone.trim() ? { timezone: d.timezone.trim() } : {}) });
    } catch (err) {
      if (!(err instanceof ScheduleError)) throw err;
      errors[/time zone/.test(err.message) ? 'timezone' : 'schedule'] = err.message;
    }
  }
  d.sources.forEach((s, i) => {
    if ((s.type === 'postgres' || s.type === 'mysql') && !s.database.trim()) errors[`sources.${i}.database`] = 'Name the database to dump.';
    if (s.type === 'sqlite' && !s.path.trim()) errors[`sources.${i}.path`] = 'Give the database file.';
    if (s.type === 'command' && !s.command.trim()) errors[`sources.${i}.command`] = 'Give the command whose output is stored.';
    if (s.type === 'command' && !s.filename.trim()) errors[`sources.${i}.filename`] = 'Give the file name it is stored under.';
  });
  const retention: Retention = { ...d.retentionOther };
  for (const k of KEEP) {
    const text = d.retention[k.id].trim();
    if (text === '') continue;
    const n = Number(text);
    if (!Number.isInteger(n) || n < 0) errors[`retention.${k.id}`] = 'A whole number, 0 or more.';
    else retention[k.id] = n;
  }
  const hooks: Hooks = {};
  for (const h of HOOKS) {
    const { command, timeout } = d.hooks[h.id];
    if (!command.trim()) {
      if (timeout.trim()) errors[`hooks.${h.id}.command`] = 'A time limit needs a command.';
      continue;
    }
    if (timeout.trim() && !/^\d+(\.\d+)?\s*(ms|s|m|h|d)$/.test(timeout.trim())) errors[`hooks.${h.id}.timeout`] = 'A duration, like 90s, 5m or 1h.';
    hooks[h.id] = { command: command.trim(), ...(timeout.trim() ? { timeout: timeout.trim() } : {}) };
  }
  const emails = d.emails
    .split(/[,\s]+/)
    .map((e) => e.trim())
    .filter(Boolean);
  const bad = emails.find((e) => !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(e));
  if (bad) errors['notify.email'] = `"${bad}" is not an email address.`;
  const webhooks = lines(d.webhooks);
  const badHook = webhooks.find((w) => !/^https?:\/\/\S+$/.test(w));
  if (badHook) errors['notify.webhooks'] = `"${badHook}" is not an http:// or https:// URL.`;
  const workers = Number(d.workers);
  if (d.scale === 'count' && !(Number.isInteger(workers) && workers >= 2 && workers <= 64)) errors.workers = 'A whole number of agents, 2 to 64.';
  if (d.scale === 'label' && !/^[A-Za-z0-9][\w.-]{0,49}$/.test(d.workerLabel.trim())) errors.workerLabel = 'A label: letters, digits, dot, dash and underscore, starting with a letter or digit.';
  if (d.scale !== 'one' && d.sources.length > 0) errors.workers = 'A plan with several agents backs up folders only: remove the database and command sources, or give them a plan of their own.';
  const notify: Notify = { ...(emails.length ? { email: emails } : {}), ...(webhooks.length ? { webhooks } : {}), ...(d.notifyOn.length ? { on: d.notifyOn as Notify['on'] } : {}) };
  const body = {
    name: d.name,
    agentId: d.agentId,
    enabled: d.enabled,
    paths,
    excludes: lines(d.excludes),
    tags: d.tags
      .split(',')
      .map((t) => t.trim())
      .filter(Boolean),
    oneFileSystem: d.oneFileSystem,
    destinations: d.destinations,
    schedule: d.schedule.trim() || null,
    timezone: d.timezone.trim() || null,
    sources: d.sources,
    hooks,
    retention,
    notify,
    workers: d.scale === 'count' ? workers : null,
    workerLabel: d.scale === 'label' ? d.workerLabel.trim() : null,
    allowPartial: d.scale !== 'one' && d.allowPartial ? true : null,
  };
  return { body, errors };
}

/** The field a refusal from the server is about ('' when it names none). */
export function fieldOfServerError(message: string): string {
  const validation = /body\/([\w/]+)/.exec(message);
  if (validation) return validation[1]!.replace(/\//g, '.').replace(/^(paths|excludes|destinations|tags)\.\d+$/, '$1');
  const prefixed = /^(name|agentId|paths|excludes|destinations|schedule|timezone|sources(?:\.\d+\.\w+)?|hooks\.\w+\.\w+|retention\.\w+|notify\.\w+|workers|workerLabel|allowPartial):/.exec(message);
  if (prefixed) return /^schedule: .*time zone/.test(message) ? 'timezone' : prefixed[1]!;
  if (/a plan named/.test(message)) return 'name';
  if (/agent of the plan/.test(message)) return 'agentId';
  if (/destination/.test(message)) return 'destinations';
  return '';
}

function Section({ id, title, description, children }: { readonly id: string; readonly title: string; readonly description?: string; readonly children: ReactNode }) {
  return (
    <Card aria-labelledby={id}>
      <CardHeader id={id} title={title} {...(description ? { description } : {})} />
      <CardBody className="space-y-4">{children}</CardBody>
    </Card>
  );
}

function SourceEditor({ source, index, errors, onChange, onRemove }: { readonly source: Source; readonly index: number; readonly errors: Errors; readonly onChange: (s: Source) => void; readonly onRemove: () => void }) {
  const e = (f: string): string | undefined => errors[`sources.${index}.${f}`];
  const text = (field: string, label: string, hint?: string, placeholder?: string) => (
    <Field label={label} error={e(field)} hint={hint}>
      {(p) => <Input {...p} value={String((source as unknown as Record<string, unknown>)[field] ?? '')} placeholder={placeholder} onChange={(ev) => onChange({ ...source, [field]: field === 'port' ? (ev.target.value ? Number(ev.target.value) : undefined) : ev.target.value || undefined } as Source)} />}
    </Field>
  );
  return (
    <fieldset className="rounded-md border border-slate-200 p-3">
      <legend className="px-1 text-sm font-medium">Source {index + 1}</legend>
      <div className="grid gap-3 sm:grid-cols-3">
        <Field label="Kind">
          {(p) => (
            <Select
              {...p}
              value={source.type}
              onChange={(ev) => {
                const type = ev.target.value as Source['type'];
                onChange(type === 'sqlite' ? { type, path: '' } : type === 'command' ? { type, command: '', filename: '' } : { type, database: '' });
              }}
            >
              <option value="postgres">PostgreSQL dump</option>
              <option value="mysql">MySQL / MariaDB dump</option>
              <option value="sqlite">SQLite database</option>
              <option value="command">Output of a command</option>
            </Select>
          )}
        </Field>
        {source.type === 'postgres' || source.type === 'mysql' ? (
          <>
            {text('database', 'Database')}
            {text('host', 'Host', 'Empty: the local socket.')}
            {text('port', 'Port')}
            {text('user', 'User')}
            {text('passwordFile', 'Password file', 'On the agent; the password never reaches the server.')}
            {text('filename', 'Stored as', 'Default: the database name with .sql.')}
          </>
        ) : null}
        {source.type === 'sqlite' ? (
          <>
            {text('path', 'Database file', undefined, '/var/lib/app/app.db')}
            {text('filename', 'Stored as')}
          </>
        ) : null}
        {source.type === 'command' ? (
          <>
            {text('command', 'Command', 'Run with /bin/sh -c; what it prints is stored.')}
            {text('filename', 'Stored as', 'The file name in the snapshot.')}
          </>
        ) : null}
      </div>
      <div className="mt-3 flex justify-end">
        <Button size="sm" variant="ghost" onClick={onRemove} aria-label={`Remove source ${index + 1}`}>
          <Trash2 className="h-4 w-4 text-red-700" aria-hidden="true" />
          Remove
        </Button>
      </div>
    </fieldset>
  );
}

function SchedulePreview({ cron, timezone }: { readonly cron: string; readonly timezone: string }) {
  const next = useMemo(() => {
    if (!cron.trim()) return [];
    try {
      const s = parseSchedule({ cron: cron.trim(), ...(timezone.trim() ? { timezone: timezone.trim() } : {}) });
      const out: number[] = [];
      let at = Date.now();
      for (let i = 0; i < 3; i++) {
        const n = nextSlot(s, at);
        if (n === undefined) break;
        out.push(n);
        at = n;
      }
      return out;
    } catch {
      return [];
    }
  }, [cron, timezone]);
  return <p className="num min-h-5 text-sm text-slate-700">{cron.trim() ? next.length ? `Next runs: ${next.map((n) => formatTime(n)).join(' · ')}` : '' : 'Runs only when started by hand (Run now).'}</p>;
}

function PlanForm({ plan }: { readonly plan: Plan | undefined }) {
  const agents = useAgents();
  const destinations = useDestinations();
  const client = useQueryClient();
  const navigate = useNavigate();
  const toast = useToast();
  const [draft, setDraft] = useState<Draft>(() => draftOf(plan));
  const [errors, setErrors] = useState<Errors>({});
  const [failure, setFailure] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const [addingDestination, setAddingDestination] = useState(false);
  const form = useRef<HTMLFormElement>(null);
  const set = <K extends keyof Draft>(key: K, value: Draft[K]): void => setDraft((d) => ({ ...d, [key]: value }));

  /** Moves focus to the first field with a problem, so keyboard and screen reader users land on it. */
  const focusFirstError = (): void => {
    requestAnimationFrame(() => form.current?.querySelector<HTMLElement>('[aria-invalid="true"]')?.focus());
  };

  const submit = async (e: FormEvent): Promise<void> => {
    e.preventDefault();
    const { body, errors: found } = bodyOf(draft);
    setErrors(found);
    setFailure(undefined);
    if (Object.keys(found).length > 0) return focusFirstError();
    setBusy(true);
    try {
      let saved = plan ? await put<Plan>(`/api/plans/${plan.id}`, body) : await post<Plan>('/api/plans', body);
      // The passphrase has a route of its own (write-only): set after the plan, so a new plan has its id.
      const passphrase = draft.passphrase !== '' ? draft.passphrase : draft.clearPassphrase ? '' : undefined;
      if (passphrase !== undefined) saved = { ...saved, ...(await put<{ hasPassphrase: boolean }>(`/api/plans/${saved.id}/passphrase`, { passphrase })) };
      client.setQueryData(keys.plan(saved.id), saved);
      void client.invalidateQueries({ queryKey: keys.plans });
      toast.ok(`Plan ${saved.name} saved`);
      void navigate({ to: '/plans' });
    } catch (err) {
      const field = err instanceof ApiError && (err.status === 400 || err.status === 409) ? fieldOfServerError(err.message) : '';
      if (field) {
        setErrors({ [field]: (err as Error).message.replace(/^invalid request: /, '') });
        focusFirstError();
      } else setFailure(err);
    } finally {
      setBusy(false);
    }
  };

  const knownLabels = [...new Set(agents.data?.flatMap((a) => a.labels ?? []) ?? [])].sort();
  const hookSet = (id: keyof Draft['hooks'], field: 'command' | 'timeout', value: string): void => set('hooks', { ...draft.hooks, [id]: { ...draft.hooks[id], [field]: value } });

  return (
    <form ref={form} noValidate onSubmit={(e) => void submit(e)} className="space-y-4">
      {failure ? <ErrorBox error={failure} title="Could not save the plan" /> : null}
      {Object.keys(errors).length > 0 ? (
        <p role="alert" className="rounded-md border border-red-200 bg-red-50 px-3 py-2 text-sm text-red-900">
          {Object.keys(errors).length === 1 ? 'One field needs attention' : `${Object.keys(errors).length} fields need attention`}; see the messages below.
        </p>
      ) : null}
      <Section id="basics" title="Plan">
        <div className="grid gap-4 sm:grid-cols-2">
          <Field label="Name" error={errors.name} hint="Letters, digits, dot, dash, underscore.">
            {(p) => <Input {...p} value={draft.name} onChange={(e) => set('name', e.target.value)} maxLength={100} />}
          </Field>
          <Field label="Agent" error={errors.agentId} hint="The machine that runs the backup.">
            {(p) => (
              <Select {...p} value={draft.agentId} onChange={(e) => set('agentId', e.target.value)}>
                <option value="">Choose an agent…</option>
                {agents.data?.map((a) => (
                  <option key={a.id} value={a.id}>
                    {a.hostname} ({a.status})
                  </option>
                ))}
              </Select>
            )}
          </Field>
        </div>
        <Checkbox label="Enabled" hint="A disabled plan keeps its settings but its schedule does not run." checked={draft.enabled} onChange={(e) => set('enabled', e.target.checked)} />
      </Section>

      <Section id="sources" title="What to back up" description="Folders on the agent, and databases or command output streamed straight into the snapshot.">
        <Field label="Folders and files" error={errors.paths} hint="One absolute path per line.">
          {(p) => <Textarea {...p} rows={4} value={draft.paths} onChange={(e) => set('paths', e.target.value)} placeholder={'/home\n/etc'} />}
        </Field>
        {draft.sources.map((s, i) => (
          <SourceEditor key={i} index={i} source={s} errors={errors} onChange={(next) => set('sources', draft.sources.map((x, j) => (j === i ? next : x)))} onRemove={() => set('sources', draft.sources.filter((_, j) => j !== i))} />
        ))}
        <Button size="sm" onClick={() => set('sources', [...draft.sources, { type: 'postgres', database: '' }])}>
          <Plus className="h-4 w-4" aria-hidden="true" />
          Add a database or command
        </Button>
        <Field label="Excludes" error={errors.excludes} hint="One pattern per line, e.g. *.tmp, /home/*/.cache, node_modules.">
          {(p) => <Textarea {...p} rows={3} value={draft.excludes} onChange={(e) => set('excludes', e.target.value)} />}
        </Field>
        <div className="grid gap-4 sm:grid-cols-2">
          <Field label="Tags" error={errors.tags} hint="Comma-separated; stored with each snapshot.">
            {(p) => <Input {...p} value={draft.tags} onChange={(e) => set('tags', e.target.value)} />}
          </Field>
          <div className="pt-6">
            <Checkbox label="Stay on one file system" hint="Do not descend into other mounts." checked={draft.oneFileSystem} onChange={(e) => set('oneFileSystem', e.target.checked)} />
          </div>
        </div>
      </Section>

      <Section id="workers-section" title="Workers" description="A very large source can be split into shards that several agents back up at once, into one snapshot. The plan's agent splits and merges; the others must see the same paths (a shared mount).">
        <Field label="Who backs it up">
          {(p) => (
            <Select {...p} value={draft.scale} onChange={(e) => set('scale', e.target.value as Draft['scale'])}>
              <option value="one">The plan's agent alone</option>
              <option value="count">Several of my online agents</option>
              <option value="label">Every agent with a label</option>
            </Select>
          )}
        </Field>
        {draft.scale === 'count' ? (
          <Field label="Number of agents" error={errors.workers} hint="The plan's agent and the others online with the most capacity, 2 to 64.">
            {(p) => <Input {...p} inputMode="numeric" value={draft.workers} onChange={(e) => set('workers', e.target.value)} />}
          </Field>
        ) : null}
        {draft.scale === 'label' ? (
          <Field label="Label" error={errors.workerLabel ?? errors.workers} hint={`Agents get labels on the Agents page or with coffer agent --label.${knownLabels.length ? ` Yours: ${knownLabels.join(', ')}.` : ''}`}>
            {(p) => <Input {...p} value={draft.workerLabel} onChange={(e) => set('workerLabel', e.target.value)} />}
          </Field>
        ) : null}
        {draft.scale !== 'one' ? <Checkbox label="Allow a partial snapshot" hint="When a shard fails for good, keep a snapshot marked partial that lists what is missing, instead of none." checked={draft.allowPartial} onChange={(e) => set('allowPartial', e.target.checked)} /> : null}
      </Section>

      <Section id="destinations-section" title="Destinations" description="Every snapshot is written to each destination chosen here.">
        <fieldset aria-describedby={errors.destinations ? 'destinations-error' : undefined}>
          <legend className="sr-only">Destinations</legend>
          {destinations.data?.length === 0 ? <p className="text-sm text-slate-600">No destination yet: add one.</p> : null}
          <ul className="space-y-2">
            {destinations.data?.map((d) => (
              <li key={d.id} className="flex flex-wrap items-center justify-between gap-2 rounded-md border border-slate-200 px-3 py-2">
                <Checkbox
                  label={
                    <>
                      <span className="font-medium">{d.name}</span> <span className="font-mono text-xs text-slate-600">{d.location}</span>
                    </>
                  }
                  checked={draft.destinations.includes(d.id)}
                  onChange={(e) => set('destinations', e.target.checked ? [...draft.destinations, d.id] : draft.destinations.filter((x) => x !== d.id))}
                />
                <TestWriteButton destination={d} agentId={draft.agentId || undefined} />
              </li>
            ))}
          </ul>
          {errors.destinations ? (
            <p id="destinations-error" role="alert" className="mt-2 text-sm text-red-700">
              {errors.destinations}
            </p>
          ) : null}
        </fieldset>
        <Button size="sm" onClick={() => setAddingDestination(true)}>
          <Plus className="h-4 w-4" aria-hidden="true" />
          New destination
        </Button>
      </Section>

      <Section id="schedule" title="Schedule" description="When the server starts this plan. A run that is still going when the next one is due is not started twice.">
        <div className="grid gap-4 sm:grid-cols-3">
          <Field label="Preset">
            {(p) => (
              <Select {...p} value={PRESETS.find((x) => x.cron === draft.schedule.trim())?.cron ?? 'custom'} onChange={(e) => e.target.value !== 'custom' && set('schedule', e.target.value)}>
                {PRESETS.map((x) => (
                  <option key={x.label} value={x.cron}>
                    {x.label}
                  </option>
                ))}
                <option value="custom">Custom</option>
              </Select>
            )}
          </Field>
          <Field label="Cron" error={errors.schedule} hint="minute hour day month weekday">
            {(p) => <Input {...p} className="font-mono" value={draft.schedule} onChange={(e) => set('schedule', e.target.value)} placeholder="0 2 * * *" />}
          </Field>
          <Field label="Time zone" error={errors.timezone} hint="e.g. Europe/Berlin; empty: the server's.">
            {(p) => <Input {...p} value={draft.timezone} onChange={(e) => set('timezone', e.target.value)} />}
          </Field>
        </div>
        <SchedulePreview cron={draft.schedule} timezone={draft.timezone} />
      </Section>

      <Section
        id="retention"
        title="Retention"
        description="Which snapshots of this plan to keep. Empty keeps everything. The agent applies it after each successful run on destinations it opens itself. Server-held S3 destinations are write-only for agents: there the server applies it if it holds the repository's passphrase, otherwise an administrator does (coffer forget --prune)."
      >
        <div className="grid grid-cols-2 gap-4 sm:grid-cols-6">
          {KEEP.map((k) => (
            <Field key={k.id} label={k.label} error={errors[`retention.${k.id}`]}>
              {(p) => <Input {...p} inputMode="numeric" value={draft.retention[k.id]} onChange={(e) => set('retention', { ...draft.retention, [k.id]: e.target.value })} />}
            </Field>
          ))}
        </div>
        <div className="grid gap-4 sm:grid-cols-2">
          <Field
            label="Repository passphrase for the server"
            error={errors.passphrase}
            hint={`${plan?.hasPassphrase ? 'Set' : 'Not set'}. With it the server applies the retention on its S3 destinations, and can read this repository: give it only if you trust the server. It is never shown again; typing a new one replaces it.`}
          >
            {(p) => <Input {...p} type="password" autoComplete="new-password" value={draft.passphrase} onChange={(e) => set('passphrase', e.target.value)} />}
          </Field>
          {plan?.hasPassphrase ? (
            <div className="pt-6">
              <Checkbox label="Clear the passphrase the server holds" checked={draft.clearPassphrase} disabled={draft.passphrase !== ''} onChange={(e) => set('clearPassphrase', e.target.checked)} />
            </div>
          ) : null}
        </div>
      </Section>

      <Section id="hooks" title="Hooks" description="Commands the agent runs around the backup, with the job's details in COFFER_* variables.">
        {HOOKS.map((h) => (
          <div key={h.id} className="grid gap-3 sm:grid-cols-[1fr_8rem]">
            <Field label={h.label} error={errors[`hooks.${h.id}.command`]} hint={h.hint || undefined}>
              {(p) => <Input {...p} className="font-mono" value={draft.hooks[h.id].command} onChange={(e) => hookSet(h.id, 'command', e.target.value)} />}
            </Field>
            <Field label="Time limit" error={errors[`hooks.${h.id}.timeout`]} hint="Default 5m.">
              {(p) => <Input {...p} value={draft.hooks[h.id].timeout} onChange={(e) => hookSet(h.id, 'timeout', e.target.value)} placeholder="5m" />}
            </Field>
          </div>
        ))}
      </Section>

      <Section id="notifications" title="Notifications" description="Email goes through the server's SMTP settings; webhooks receive a JSON POST.">
        <Field label="Email to" error={errors['notify.email']} hint="Comma-separated addresses.">
          {(p) => <Input {...p} value={draft.emails} onChange={(e) => set('emails', e.target.value)} />}
        </Field>
        <Field label="Webhooks" error={errors['notify.webhooks']} hint="One URL per line.">
          {(p) => <Textarea {...p} rows={2} value={draft.webhooks} onChange={(e) => set('webhooks', e.target.value)} />}
        </Field>
        <fieldset>
          <legend className="mb-2 text-sm font-medium text-slate-800">Notify when (none checked: all of them)</legend>
          <div className="grid gap-2 sm:grid-cols-2">
            {NOTIFY_EVENTS.map((ev) => (
              <Checkbox key={ev.id} label={ev.label} checked={draft.notifyOn.includes(ev.id)} onChange={(e) => set('notifyOn', e.target.checked ? [...draft.notifyOn, ev.id] : draft.notifyOn.filter((x) => x !== ev.id))} />
            ))}
          </div>
        </fieldset>
      </Section>

      <div className="sticky bottom-0 -mx-4 flex justify-end gap-2 border-t border-slate-200 bg-slate-50/95 px-4 py-3 sm:-mx-6 sm:px-6 lg:-mx-8 lg:px-8">
        <Button onClick={() => void navigate({ to: '/plans' })}>Cancel</Button>
        <Button type="submit" variant="primary" busy={busy}>
          {plan ? 'Save plan' : 'Create plan'}
        </Button>
      </div>
      <DestinationDialog open={addingDestination} onClose={() => setAddingDestination(false)} onSaved={(d) => set('destinations', [...draft.destinations, d.id])} />
    </form>
  );
}

export function PlanEditPage() {
  const params = useParams({ strict: false });
  const planId = (params as { planId?: string }).planId;
  return planId ? <ExistingPlan id={planId} /> : <NewPlan />;
}

function NewPlan() {
  return (
    <>
      <PageHeader title="New plan" description="What to back up on which machine, where to, and when." />
      <PlanForm plan={undefined} />
    </>
  );
}

function ExistingPlan({ id }: { readonly id: string }) {
  const plan = usePlan(id);
  return (
    <>
      <PageHeader title={plan.data ? `Plan ${plan.data.name}` : 'Plan'} description={plan.data ? `Revision ${plan.data.revision}, changed ${formatTime(plan.data.updatedAt)}` : undefined} />
      {plan.data ? <PlanForm key={plan.data.id} plan={plan.data} /> : plan.error ? <ErrorBox error={plan.error} retry={() => void plan.refetch()} /> : <Loading />}
    </>
  );
}
