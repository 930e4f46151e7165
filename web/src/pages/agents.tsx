// Agents: online or offline, last heartbeat, version, capacity and running jobs; bandwidth limits; and
// enrolling a new one, which makes a fresh API key and shows the install command with it, once.
import { useQueryClient } from '@tanstack/react-query';
import { Check, Copy, KeyRound, Plus, Server, Trash2 } from 'lucide-react';
import { useState, type FormEvent } from 'react';
import { errorMessage } from '../api/client.ts';
import { del, keys, patch, post, useAgents } from '../api/queries.ts';
import type { Agent } from '../api/types.ts';
import { Badge } from '../components/ui/badge.tsx';
import { Button } from '../components/ui/button.tsx';
import { Card } from '../components/ui/card.tsx';
import { Dialog } from '../components/ui/dialog.tsx';
import { Field, Input } from '../components/ui/field.tsx';
import { PageHeader } from '../components/ui/page.tsx';
import { Empty, ErrorBox, QueryState } from '../components/ui/states.tsx';
import { Table, Td, Th } from '../components/ui/table.tsx';
import { useToast } from '../components/ui/toast.tsx';
import { formatAgo, formatBytes, formatTime, parseSize } from '../lib/format.ts';

export function CopyButton({ text, label }: { readonly text: string; readonly label: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <Button
      size="sm"
      variant="secondary"
      aria-label={label}
      onClick={() => {
        void navigator.clipboard?.writeText(text).then(() => {
          setCopied(true);
          setTimeout(() => setCopied(false), 2000);
        });
      }}
    >
      {copied ? <Check className="h-3.5 w-3.5" aria-hidden="true" /> : <Copy className="h-3.5 w-3.5" aria-hidden="true" />}
      {copied ? 'Copied' : 'Copy'}
    </Button>
  );
}

/** The commands that install an agent with this key, for this server. */
export function installCommands(key: string, origin = window.location.origin): string {
  return [
    '# on the machine to back up, as root; the repository passphrase goes in /etc/coffer/passphrase (mode 600)',
    `coffer agent install --server ${origin} --key-file /etc/coffer/agent.key --key ${key} --password-file /etc/coffer/passphrase`,
    'systemctl daemon-reload && systemctl enable --now coffer-agent.service',
  ].join('\n');
}

function EnrollDialog({ open, onClose, knownAgents }: { readonly open: boolean; readonly onClose: () => void; readonly knownAgents: readonly string[] }) {
  const client = useQueryClient();
  const agents = useAgents();
  const [name, setName] = useState('');
  const [created, setCreated] = useState<{ key: string; name: string } | undefined>();
  const [failure, setFailure] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const joined = created ? agents.data?.filter((a) => !knownAgents.includes(a.id)) : undefined;

  const close = (): void => {
    setCreated(undefined);
    setName('');
    setFailure(undefined);
    onClose();
  };

  const submit = async (e: FormEvent): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setFailure(undefined);
    try {
      const keyName = name.trim() || `agent ${new Date().toISOString().slice(0, 10)}`;
      const answer = await post<{ key: string; name: string }>('/api/keys', { name: keyName });
      setCreated(answer);
      void client.invalidateQueries({ queryKey: keys.keys });
    } catch (err) {
      setFailure(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Dialog
      open={open}
      onClose={close}
      wide
      title="Add an agent"
      description={created ? 'Run these commands on the machine. The key is shown only now: copy it before you close this window.' : 'An agent runs on each machine to back up. It connects with an API key made for it.'}
      footer={
        created ? (
          <Button variant="primary" onClick={close}>
            Done
          </Button>
        ) : (
          <>
            <Button onClick={close}>Cancel</Button>
            <Button variant="primary" type="submit" form="enroll-form" busy={busy}>
              <KeyRound className="h-4 w-4" aria-hidden="true" />
              Create key and show command
            </Button>
          </>
        )
      }
    >
      {created ? (
        <div className="space-y-4">
          <div>
            <div className="mb-1 flex items-center justify-between">
              <h3 className="text-sm font-medium">Install command</h3>
              <CopyButton text={installCommands(created.key)} label="Copy the install command" />
            </div>
            <pre data-testid="install-command" className="overflow-x-auto rounded-md bg-slate-900 p-3 font-mono text-xs leading-5 whitespace-pre-wrap break-all text-slate-100">
              {installCommands(created.key)}
            </pre>
          </div>
          <div>
            <div className="mb-1 flex items-center justify-between">
              <h3 className="text-sm font-medium">API key “{created.name}”</h3>
              <CopyButton text={created.key} label="Copy the API key" />
            </div>
            <code data-testid="api-key" className="block rounded-md border border-slate-200 bg-slate-50 p-2 font-mono text-xs break-all">
              {created.key}
            </code>
          </div>
          <p role="status" className="flex items-center gap-2 text-sm">
            {joined && joined.length > 0 ? (
              <>
                <Check className="h-4 w-4 text-green-600" aria-hidden="true" />
                {joined.map((a) => a.hostname).join(', ')} connected.
              </>
            ) : (
              <span className="text-slate-600">Waiting for the agent to connect…</span>
            )}
          </p>
        </div>
      ) : (
        <form id="enroll-form" onSubmit={(e) => void submit(e)} className="space-y-4">
          <Field label="Name of the key" hint="To tell keys apart later, e.g. the machine's name. You can revoke it in Settings.">
            {(p) => <Input {...p} value={name} maxLength={100} placeholder="laptop" onChange={(e) => setName(e.target.value)} autoFocus />}
          </Field>
          {failure ? <ErrorBox error={failure} title="Could not create the key" /> : null}
        </form>
      )}
    </Dialog>
  );
}

/** Labels as a person types them: separated by commas or spaces. */
function labelsOf(text: string): string[] {
  return [...new Set(text.split(/[\s,]+/).filter(Boolean))];
}

const LABEL = /^[A-Za-z0-9][\w.-]{0,49}$/;

function SettingsDialog({ agent, onClose }: { readonly agent: Agent | undefined; readonly onClose: () => void }) {
  const client = useQueryClient();
  const toast = useToast();
  const [upload, setUpload] = useState('');
  const [download, setDownload] = useState('');
  const [labels, setLabels] = useState('');
  const [errors, setErrors] = useState<{ upload?: string; download?: string; labels?: string }>({});
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState<unknown>();
  const [openFor, setOpenFor] = useState<string | undefined>();
  if (agent && openFor !== agent.id) {
    setOpenFor(agent.id);
    setUpload(agent.uploadLimit ? formatBytes(agent.uploadLimit) : '');
    setDownload(agent.downloadLimit ? formatBytes(agent.downloadLimit) : '');
    setLabels((agent.labels ?? []).join(', '));
    setErrors({});
    setFailure(undefined);
  }
  const parse = (text: string): number | null | undefined => (text.trim() === '' ? null : parseSize(text));
  const submit = async (e: FormEvent): Promise<void> => {
    e.preventDefault();
    if (!agent) return;
    const up = parse(upload);
    const down = parse(download);
    const list = labelsOf(labels);
    const bad = list.find((l) => !LABEL.test(l));
    const rate = 'Write a rate like 5M (5 MiB/s) or 500K, or leave it empty for no limit.';
    const problems = {
      ...(up === undefined ? { upload: rate } : {}),
      ...(down === undefined ? { download: rate } : {}),
      ...(bad !== undefined ? { labels: `"${bad}": use letters, digits, dot, dash and underscore, starting with a letter or digit (up to 50).` } : list.length > 20 ? { labels: 'At most 20 labels.' } : {}),
    };
    setErrors(problems);
    if (Object.keys(problems).length > 0) return;
    setBusy(true);
    try {
      await patch(`/api/agents/${agent.id}`, { uploadLimit: up, downloadLimit: down, labels: list });
      void client.invalidateQueries({ queryKey: keys.agents });
      toast.ok(`Settings of ${agent.hostname} saved`);
      onClose();
    } catch (err) {
      setFailure(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog
      open={agent !== undefined}
      onClose={onClose}
      title={`Settings of ${agent?.hostname ?? ''}`}
      description="Bandwidth limits for all of the agent's transfers together (empty means no limit), and its labels."
      footer={
        <>
          <Button onClick={onClose}>Cancel</Button>
          <Button variant="primary" type="submit" form="limits-form" busy={busy}>
            Save
          </Button>
        </>
      }
    >
      <form id="limits-form" onSubmit={(e) => void submit(e)} className="grid gap-4 sm:grid-cols-2">
        <Field label="Upload per second" error={errors.upload} hint="e.g. 10M">
          {(p) => <Input {...p} value={upload} onChange={(e) => setUpload(e.target.value)} />}
        </Field>
        <Field label="Download per second" error={errors.download} hint="e.g. 50M">
          {(p) => <Input {...p} value={download} onChange={(e) => setDownload(e.target.value)} />}
        </Field>
        <div className="sm:col-span-2">
          <Field label="Labels" error={errors.labels} hint="Comma-separated, e.g. nas, rack-2. A plan can have every agent with a label back up its shards. An agent started with --label sets its own at each start.">
            {(p) => <Input {...p} value={labels} onChange={(e) => setLabels(e.target.value)} />}
          </Field>
        </div>
        {failure ? <ErrorBox className="sm:col-span-2" error={failure} title="Could not save" /> : null}
      </form>
    </Dialog>
  );
}

export function AgentsPage() {
  const agents = useAgents();
  const client = useQueryClient();
  const toast = useToast();
  const [enrolling, setEnrolling] = useState(false);
  const [known, setKnown] = useState<string[]>([]);
  const [limitsOf, setLimitsOf] = useState<Agent | undefined>();
  const [removing, setRemoving] = useState<Agent | undefined>();
  const [busy, setBusy] = useState(false);

  const startEnroll = (): void => {
    setKnown(agents.data?.map((a) => a.id) ?? []);
    setEnrolling(true);
  };

  const remove = async (): Promise<void> => {
    if (!removing) return;
    setBusy(true);
    try {
      await del(`/api/agents/${removing.id}`);
      toast.ok(`${removing.hostname} removed`);
      void client.invalidateQueries({ queryKey: keys.agents });
      void client.invalidateQueries({ queryKey: keys.plans });
      setRemoving(undefined);
    } catch (err) {
      toast.error(`Could not remove ${removing.hostname}: ${errorMessage(err)}`);
    } finally {
      setBusy(false);
    }
  };

  const addButton = (
    <Button variant="primary" onClick={startEnroll}>
      <Plus className="h-4 w-4" aria-hidden="true" />
      Add agent
    </Button>
  );

  return (
    <>
      <PageHeader title="Agents" description="The machines that back up to this server." actions={addButton} />
      <Card aria-label="Agents">
        <QueryState query={agents}>
          {(list) =>
            list.length === 0 ? (
              <Empty icon={<Server className="h-10 w-10" />} title="No agent yet" action={addButton}>
                Add an agent on each machine you want to back up. It connects to this server and runs the plans you give it.
              </Empty>
            ) : (
              <Table label="Agents">
                <thead>
                  <tr>
                    <Th>Machine</Th>
                    <Th>Status</Th>
                    <Th>Last heartbeat</Th>
                    <Th>Version</Th>
                    <Th className="text-right">Running</Th>
                    <Th>Limits</Th>
                    <Th>
                      <span className="sr-only">Actions</span>
                    </Th>
                  </tr>
                </thead>
                <tbody>
                  {list.map((a) => (
                    <tr key={a.id}>
                      <Td>
                        <div className="font-medium">{a.hostname}</div>
                        <div className="text-xs text-slate-600">{a.os}</div>
                        {a.labels?.length ? (
                          <ul className="mt-1 flex flex-wrap gap-1" aria-label={`Labels of ${a.hostname}`}>
                            {a.labels.map((l) => (
                              <li key={l}>
                                <Badge tone="violet">{l}</Badge>
                              </li>
                            ))}
                          </ul>
                        ) : null}
                      </Td>
                      <Td>
                        <Badge tone={a.status === 'online' ? 'green' : 'red'}>
                          <span aria-hidden="true" className={`h-1.5 w-1.5 rounded-full ${a.status === 'online' ? 'bg-green-600' : 'bg-red-600'}`} />
                          {a.status}
                        </Badge>
                      </Td>
                      <Td className="num whitespace-nowrap" title={formatTime(a.lastHeartbeatAt)}>
                        {formatAgo(a.lastHeartbeatAt)}
                      </Td>
                      <Td className="whitespace-nowrap">
                        <span className="num">{a.version}</span>
                        {a.outdated ? (
                          <Badge tone="amber" className="ml-2" title="Older than the server: update it">
                            update
                          </Badge>
                        ) : null}
                      </Td>
                      <Td className="num text-right whitespace-nowrap">
                        {a.running} of {a.capacity}
                      </Td>
                      <Td className="num text-xs whitespace-nowrap text-slate-700">
                        ↑ {a.uploadLimit ? `${formatBytes(a.uploadLimit)}/s` : 'no limit'}
                        <br />↓ {a.downloadLimit ? `${formatBytes(a.downloadLimit)}/s` : 'no limit'}
                      </Td>
                      <Td className="text-right whitespace-nowrap">
                        <Button size="sm" variant="ghost" onClick={() => setLimitsOf(a)} aria-label={`Limits and labels of ${a.hostname}`}>
                          Edit
                        </Button>
                        <Button size="sm" variant="ghost" onClick={() => setRemoving(a)} aria-label={`Remove ${a.hostname}`}>
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
      </Card>
      <EnrollDialog open={enrolling} onClose={() => setEnrolling(false)} knownAgents={known} />
      <SettingsDialog agent={limitsOf} onClose={() => setLimitsOf(undefined)} />
      <Dialog
        open={removing !== undefined}
        onClose={() => setRemoving(undefined)}
        title={`Remove ${removing?.hostname ?? ''}?`}
        description="The agent stops at once and its plans are deleted. Its snapshots stay in storage, and its history stays here."
        footer={
          <>
            <Button onClick={() => setRemoving(undefined)}>Keep it</Button>
            <Button variant="danger" busy={busy} onClick={() => void remove()}>
              Remove agent
            </Button>
          </>
        }
      >
        <p className="text-sm text-slate-700">To back this machine up again later, enroll it anew with a new key.</p>
      </Dialog>
    </>
  );
}
