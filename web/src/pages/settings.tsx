// Settings: one's own password and API keys; for the administrator also the accounts, invitations,
// whether anyone may sign up, and the SMTP server alerts and reports are emailed through.
import { useQueryClient } from '@tanstack/react-query';
import { KeyRound, Mail, Plus, Send, UserPlus } from 'lucide-react';
import { useState, type FormEvent } from 'react';
import { ApiError, errorMessage } from '../api/client.ts';
import type { SettingsView } from '../api/dashboard-types.ts';
import { del, keys, post, put, useApiKeys, useInvitations, useSession, useSettings, useUsers } from '../api/queries.ts';
import { Badge } from '../components/ui/badge.tsx';
import { Button } from '../components/ui/button.tsx';
import { Card, CardBody, CardHeader } from '../components/ui/card.tsx';
import { Dialog } from '../components/ui/dialog.tsx';
import { Checkbox, Field, Input } from '../components/ui/field.tsx';
import { PageHeader } from '../components/ui/page.tsx';
import { ErrorBox, QueryState } from '../components/ui/states.tsx';
import { Table, Td, Th } from '../components/ui/table.tsx';
import { useToast } from '../components/ui/toast.tsx';
import { formatAgo, formatTime } from '../lib/format.ts';
import { CopyButton } from './agents.tsx';

function PasswordCard() {
  const toast = useToast();
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [errors, setErrors] = useState<{ current?: string; next?: string }>({});
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent): Promise<void> => {
    e.preventDefault();
    const problems = { ...(current ? {} : { current: 'Enter your current password.' }), ...(next.length >= 10 ? {} : { next: 'Choose a new password of at least 10 characters.' }) };
    setErrors(problems);
    if (Object.keys(problems).length > 0) return;
    setBusy(true);
    try {
      await post('/api/auth/password', { currentPassword: current, newPassword: next });
      toast.ok('Password changed. Your other sessions were signed out.');
      setCurrent('');
      setNext('');
    } catch (err) {
      if (err instanceof ApiError && err.status === 403) setErrors({ current: err.message });
      else if (err instanceof ApiError && err.status === 400) setErrors({ next: err.message });
      else toast.error(`Could not change the password: ${errorMessage(err)}`);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Card aria-labelledby="password-title">
      <CardHeader id="password-title" title="Password" description="Changing it signs out your other sessions." />
      <CardBody>
        <form noValidate onSubmit={(e) => void submit(e)} className="grid gap-4 sm:grid-cols-[1fr_1fr_auto] sm:items-start">
          <Field label="Current password" error={errors.current}>
            {(p) => <Input {...p} type="password" autoComplete="current-password" value={current} onChange={(e) => setCurrent(e.target.value)} />}
          </Field>
          <Field label="New password" error={errors.next} hint="At least 10 characters.">
            {(p) => <Input {...p} type="password" autoComplete="new-password" value={next} onChange={(e) => setNext(e.target.value)} />}
          </Field>
          <Button type="submit" variant="primary" busy={busy} className="sm:mt-6">
            Change password
          </Button>
        </form>
      </CardBody>
    </Card>
  );
}

function KeysCard() {
  const list = useApiKeys();
  const client = useQueryClient();
  const toast = useToast();
  const [creating, setCreating] = useState(false);
  const [name, setName] = useState('');
  const [created, setCreated] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState<unknown>();
  const close = (): void => {
    setCreating(false);
    setCreated(undefined);
    setName('');
    setFailure(undefined);
  };
  const create = async (e: FormEvent): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setFailure(undefined);
    try {
      const answer = await post<{ key: string }>('/api/keys', { name: name.trim() || 'agent' });
      setCreated(answer.key);
      void client.invalidateQueries({ queryKey: keys.keys });
    } catch (err) {
      setFailure(err);
    } finally {
      setBusy(false);
    }
  };
  const revoke = async (id: string, keyName: string): Promise<void> => {
    try {
      await del(`/api/keys/${id}`);
      toast.ok(`Key ${keyName} revoked: agents using it stop at once`);
      void client.invalidateQueries({ queryKey: keys.keys });
    } catch (err) {
      toast.error(`Could not revoke ${keyName}: ${errorMessage(err)}`);
    }
  };
  return (
    <Card aria-labelledby="keys-title">
      <CardHeader
        id="keys-title"
        title="API keys"
        description="Agents connect with these. A key is shown once when made; revoking it stops its agents at once."
        actions={
          <Button onClick={() => setCreating(true)}>
            <Plus className="h-4 w-4" aria-hidden="true" />
            New key
          </Button>
        }
      />
      <QueryState query={list}>
        {(rows) =>
          rows.length === 0 ? (
            <p className="p-4 text-sm text-slate-600">No key yet. Adding an agent makes one.</p>
          ) : (
            <Table label="API keys">
              <thead>
                <tr>
                  <Th>Name</Th>
                  <Th>Key</Th>
                  <Th>Created</Th>
                  <Th>Last used</Th>
                  <Th>
                    <span className="sr-only">Actions</span>
                  </Th>
                </tr>
              </thead>
              <tbody>
                {rows.map((k) => (
                  <tr key={k.id}>
                    <Td className="font-medium">{k.name}</Td>
                    <Td className="font-mono text-xs">{k.prefix}…</Td>
                    <Td className="num whitespace-nowrap">{formatTime(k.createdAt)}</Td>
                    <Td className="num whitespace-nowrap">{formatAgo(k.lastUsedAt)}</Td>
                    <Td className="text-right">
                      {k.revokedAt ? (
                        <Badge tone="neutral">revoked {formatAgo(k.revokedAt)}</Badge>
                      ) : (
                        <Button size="sm" variant="danger-outline" onClick={() => void revoke(k.id, k.name)} aria-label={`Revoke key ${k.name}`}>
                          Revoke
                        </Button>
                      )}
                    </Td>
                  </tr>
                ))}
              </tbody>
            </Table>
          )
        }
      </QueryState>
      <Dialog
        open={creating}
        onClose={close}
        title={created ? 'Your new API key' : 'New API key'}
        description={created ? 'Copy it now: it is not shown again.' : undefined}
        footer={
          created ? (
            <Button variant="primary" onClick={close}>
              Done
            </Button>
          ) : (
            <>
              <Button onClick={close}>Cancel</Button>
              <Button variant="primary" type="submit" form="key-form" busy={busy}>
                <KeyRound className="h-4 w-4" aria-hidden="true" />
                Create
              </Button>
            </>
          )
        }
      >
        {created ? (
          <div className="flex items-start gap-2">
            <code className="flex-1 rounded-md border border-slate-200 bg-slate-50 p-2 font-mono text-xs break-all">{created}</code>
            <CopyButton text={created} label="Copy the API key" />
          </div>
        ) : (
          <form id="key-form" onSubmit={(e) => void create(e)} className="space-y-3">
            <Field label="Name" hint="Which machine or purpose it is for.">
              {(p) => <Input {...p} value={name} maxLength={100} onChange={(e) => setName(e.target.value)} autoFocus />}
            </Field>
            {failure ? <ErrorBox error={failure} /> : null}
          </form>
        )}
      </Dialog>
    </Card>
  );
}

function UsersCard() {
  const users = useUsers(true);
  const invitations = useInvitations(true);
  const client = useQueryClient();
  const [inviting, setInviting] = useState(false);
  const [email, setEmail] = useState('');
  const [link, setLink] = useState<string | undefined>();
  const [failure, setFailure] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const close = (): void => {
    setInviting(false);
    setLink(undefined);
    setEmail('');
    setFailure(undefined);
  };
  const invite = async (e: FormEvent): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setFailure(undefined);
    try {
      const answer = await post<{ token: string }>('/api/admin/invitations', email.trim() ? { email: email.trim() } : {});
      setLink(`${window.location.origin}/login?invitation=${encodeURIComponent(answer.token)}`);
      void client.invalidateQueries({ queryKey: keys.invitations });
    } catch (err) {
      setFailure(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Card aria-labelledby="users-title">
      <CardHeader
        id="users-title"
        title="Users"
        description="Each user has their own agents, plans and snapshots; nobody sees another's."
        actions={
          <Button onClick={() => setInviting(true)}>
            <UserPlus className="h-4 w-4" aria-hidden="true" />
            Invite
          </Button>
        }
      />
      <QueryState query={users}>
        {(rows) => (
          <Table label="Users">
            <thead>
              <tr>
                <Th>Email</Th>
                <Th>Role</Th>
                <Th>Since</Th>
              </tr>
            </thead>
            <tbody>
              {rows.map((u) => (
                <tr key={u.id}>
                  <Td>{u.email}</Td>
                  <Td>{u.role === 'admin' ? <Badge tone="violet">administrator</Badge> : 'user'}</Td>
                  <Td className="num whitespace-nowrap">{formatTime(u.createdAt)}</Td>
                </tr>
              ))}
            </tbody>
          </Table>
        )}
      </QueryState>
      {invitations.data && invitations.data.length > 0 ? (
        <div className="border-t border-slate-100 px-4 py-3">
          <h3 className="mb-2 text-sm font-medium">Invitations</h3>
          <ul className="space-y-1 text-sm">
            {invitations.data.map((i) => (
              <li key={i.id} className="num flex flex-wrap gap-2">
                <span>{i.email ?? 'anyone with the link'}</span>
                <span className="text-slate-600">{i.usedAt ? `used ${formatAgo(i.usedAt)}` : i.expiresAt < Date.now() ? 'expired' : `valid until ${formatTime(i.expiresAt)}`}</span>
              </li>
            ))}
          </ul>
        </div>
      ) : null}
      <Dialog
        open={inviting}
        onClose={close}
        title="Invite someone"
        description={link ? 'Send this link to the person; it is shown only now and works for 7 days, once.' : undefined}
        footer={
          link ? (
            <Button variant="primary" onClick={close}>
              Done
            </Button>
          ) : (
            <>
              <Button onClick={close}>Cancel</Button>
              <Button variant="primary" type="submit" form="invite-form" busy={busy}>
                Create invitation
              </Button>
            </>
          )
        }
      >
        {link ? (
          <div className="flex items-start gap-2">
            <code className="flex-1 rounded-md border border-slate-200 bg-slate-50 p-2 font-mono text-xs break-all">{link}</code>
            <CopyButton text={link} label="Copy the invitation link" />
          </div>
        ) : (
          <form id="invite-form" onSubmit={(e) => void invite(e)} className="space-y-3">
            <Field label="Email (optional)" hint="Only this address can use the invitation. Empty: whoever gets the link.">
              {(p) => <Input {...p} type="email" value={email} onChange={(e) => setEmail(e.target.value)} autoFocus />}
            </Field>
            {failure ? <ErrorBox error={failure} title="Could not create the invitation" /> : null}
          </form>
        )}
      </Dialog>
    </Card>
  );
}

type SmtpErrors = Partial<Record<'host' | 'port' | 'from', string>>;

function ServerCard({ settings }: { readonly settings: SettingsView }) {
  const client = useQueryClient();
  const toast = useToast();
  const [signupOpen, setSignupOpen] = useState(settings.signup === 'open');
  const [form, setForm] = useState({
    host: settings.smtp?.host ?? '',
    port: settings.smtp?.port?.toString() ?? '',
    secure: settings.smtp?.secure ?? false,
    user: settings.smtp?.user ?? '',
    password: '',
    from: settings.smtp?.from ?? '',
  });
  const [errors, setErrors] = useState<SmtpErrors>({});
  const [failure, setFailure] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const [testing, setTesting] = useState(false);
  const set = (field: keyof typeof form) => (e: { target: { value: string } }) => setForm((f) => ({ ...f, [field]: e.target.value }));

  const save = async (e: FormEvent): Promise<void> => {
    e.preventDefault();
    const problems: SmtpErrors = {};
    const port = form.port.trim() ? Number(form.port) : null;
    if (form.host.trim()) {
      if (port !== null && (!Number.isInteger(port) || port < 1 || port > 65535)) problems.port = 'A port from 1 to 65535, or empty for the default (587, or 465 with TLS).';
      if (!/^.+@.+$/.test(form.from.trim())) problems.from = 'The sender address, like coffer@example.com.';
    }
    setErrors(problems);
    setFailure(undefined);
    if (Object.keys(problems).length > 0) return;
    setBusy(true);
    try {
      const saved = await put<SettingsView>('/api/admin/settings', {
        signup: signupOpen ? 'open' : 'invite',
        smtp: form.host.trim() ? { host: form.host.trim(), port, secure: form.secure, user: form.user.trim() || null, ...(form.password ? { password: form.password } : {}), from: form.from.trim() } : null,
      });
      client.setQueryData(keys.settings, saved);
      setForm((f) => ({ ...f, password: '' }));
      toast.ok('Server settings saved');
    } catch (err) {
      const m = err instanceof ApiError ? /^(host|port|from)[:\s]/.exec(err.message.replace(/^invalid request: body\/(smtp\/)?/, '')) : null;
      if (m) setErrors({ [m[1] as keyof SmtpErrors]: (err as Error).message });
      else setFailure(err);
    } finally {
      setBusy(false);
    }
  };
  const test = async (): Promise<void> => {
    setTesting(true);
    try {
      const answer = await post<{ to: string[] }>('/api/admin/settings/test-email');
      toast.ok(`Test email sent to ${answer.to.join(', ')}`);
    } catch (err) {
      toast.error(`The test email failed: ${errorMessage(err)}`);
    } finally {
      setTesting(false);
    }
  };
  return (
    <Card aria-labelledby="server-title">
      <CardHeader id="server-title" title="Server" description="Who may sign up, and how alerts are emailed." />
      <CardBody>
        <form noValidate onSubmit={(e) => void save(e)} className="space-y-5">
          <Checkbox label="Anyone may create an account" hint="Otherwise people join by invitation only." checked={signupOpen} onChange={(e) => setSignupOpen(e.target.checked)} />
          <fieldset className="space-y-4">
            <legend className="flex items-center gap-2 text-sm font-semibold">
              <Mail className="h-4 w-4" aria-hidden="true" />
              SMTP for alert and report emails
            </legend>
            <div className="grid gap-4 sm:grid-cols-3">
              <Field className="sm:col-span-2" label="SMTP server" error={errors.host} hint="Empty: no email.">
                {(p) => <Input {...p} value={form.host} onChange={set('host')} placeholder="smtp.example.com" />}
              </Field>
              <Field label="Port" error={errors.port}>
                {(p) => <Input {...p} inputMode="numeric" value={form.port} onChange={set('port')} placeholder="587" />}
              </Field>
              <Field label="User">{(p) => <Input {...p} value={form.user} onChange={set('user')} autoComplete="off" />}</Field>
              <Field label="Password" hint={settings.smtp?.hasPassword ? 'Stored (encrypted). Empty keeps it.' : undefined}>
                {(p) => <Input {...p} type="password" value={form.password} onChange={set('password')} autoComplete="new-password" />}
              </Field>
              <Field label="Sender" error={errors.from}>
                {(p) => <Input {...p} type="email" value={form.from} onChange={set('from')} placeholder="coffer@example.com" />}
              </Field>
            </div>
            <Checkbox label="TLS from the start (port 465)" hint="Otherwise STARTTLS when the server offers it." checked={form.secure} onChange={(e) => setForm((f) => ({ ...f, secure: e.target.checked }))} />
            <p className="text-sm text-slate-600">Each person's new alerts, and their report if they ask for it on the Reports page, go to their own account's address.</p>
          </fieldset>
          {failure ? <ErrorBox error={failure} title="Could not save" /> : null}
          <div className="flex flex-wrap gap-2">
            <Button type="submit" variant="primary" busy={busy}>
              Save server settings
            </Button>
            <Button busy={testing} disabled={!settings.smtp} onClick={() => void test()} title={!settings.smtp ? 'Save an SMTP server first' : 'Sends a test email to your own address'}>
              <Send className="h-4 w-4" aria-hidden="true" />
              Send a test email
            </Button>
          </div>
        </form>
      </CardBody>
    </Card>
  );
}

export function SettingsPage() {
  const session = useSession();
  const admin = session.data?.user.role === 'admin';
  const settings = useSettings(admin);
  return (
    <>
      <PageHeader title="Settings" description={session.data ? `Signed in as ${session.data.user.email}` : undefined} />
      <div className="space-y-4">
        <PasswordCard />
        <KeysCard />
        {admin ? (
          <>
            <UsersCard />
            <QueryState query={settings}>{(s) => <ServerCard settings={s} />}</QueryState>
          </>
        ) : null}
      </div>
    </>
  );
}
