// Adding or changing a destination: an S3 bucket whose credentials the server keeps (agents get
// pre-signed URLs and can never delete), or a path or sftp:// URL that the agent opens itself.
import { useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { ApiError } from '../api/client.ts';
import { keys, patch, post } from '../api/queries.ts';
import type { Destination } from '../api/types.ts';
import { formatBytes, parseSize } from '../lib/format.ts';
import { Button } from './ui/button.tsx';
import { Dialog } from './ui/dialog.tsx';
import { Field, Input, Select } from './ui/field.tsx';
import { ErrorBox } from './ui/states.tsx';
import { useToast } from './ui/toast.tsx';

type Errors = Partial<Record<'name' | 'location' | 'accessKeyId' | 'secretAccessKey' | 'uploadLimit' | 'downloadLimit', string>>;

const RATE_HINT = 'Bytes per second, like 10M or 500K; empty for no limit.';

/** The field a server message is about, when it names one. */
function fieldOf(message: string): keyof Errors | undefined {
  const named = /body\/(\w+)/.exec(message)?.[1];
  if (named && ['name', 'location', 'accessKeyId', 'secretAccessKey', 'uploadLimit', 'downloadLimit'].includes(named)) return named as keyof Errors;
  if (/named .* exists/.test(message)) return 'name';
  if (/accessKeyId|secretAccessKey|credentials/.test(message)) return 'accessKeyId';
  if (/location|s3:|bucket|endpoint/i.test(message)) return 'location';
  return undefined;
}

export function DestinationDialog({ open, onClose, editing, onSaved }: { readonly open: boolean; readonly onClose: () => void; readonly editing?: Destination; readonly onSaved?: (d: Destination) => void }) {
  const client = useQueryClient();
  const toast = useToast();
  const [form, setForm] = useState({ name: '', kind: 's3' as 's3' | 'location', location: '', accessKeyId: '', secretAccessKey: '', region: '', uploadLimit: '', downloadLimit: '' });
  const [errors, setErrors] = useState<Errors>({});
  const [failure, setFailure] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const [loadedFor, setLoadedFor] = useState<string | undefined>('none');
  const key = open ? (editing?.id ?? 'new') : 'none';
  if (key !== loadedFor) {
    setLoadedFor(key);
    setForm({
      name: editing?.name ?? '',
      kind: editing?.kind ?? 's3',
      location: editing?.location ?? '',
      accessKeyId: '',
      secretAccessKey: '',
      region: '',
      uploadLimit: editing?.uploadLimit ? formatBytes(editing.uploadLimit) : '',
      downloadLimit: editing?.downloadLimit ? formatBytes(editing.downloadLimit) : '',
    });
    setErrors({});
    setFailure(undefined);
  }
  const set = (field: keyof typeof form) => (e: { target: { value: string } }) => setForm((f) => ({ ...f, [field]: e.target.value }));

  const submit = async (e: FormEvent): Promise<void> => {
    e.preventDefault();
    const problems: Errors = {};
    if (!form.name.trim()) problems.name = 'Give the destination a name, like “office NAS” or “B2 bucket”.';
    if (!editing && !form.location.trim()) problems.location = form.kind === 's3' ? 'Write the bucket as s3:https://host/bucket/prefix.' : 'Write a path on the agent, or sftp://user@host/path.';
    if (!editing && form.kind === 's3' && !form.location.trim().startsWith('s3:')) problems.location = 'An S3 location starts with s3:, e.g. s3:https://s3.example.com/bucket/backups.';
    if (!editing && form.kind === 's3' && !form.accessKeyId.trim()) problems.accessKeyId = 'The access key id is needed; the server keeps it, agents never see it.';
    if (!editing && form.kind === 's3' && !form.secretAccessKey) problems.secretAccessKey = 'The secret key is needed.';
    if (editing && (form.accessKeyId.trim() === '') !== (form.secretAccessKey === '')) problems[form.accessKeyId.trim() ? 'secretAccessKey' : 'accessKeyId'] = 'To change the credentials, give both the access key id and the secret key.';
    const up = form.uploadLimit.trim() === '' ? null : parseSize(form.uploadLimit);
    const down = form.downloadLimit.trim() === '' ? null : parseSize(form.downloadLimit);
    if (up === undefined) problems.uploadLimit = RATE_HINT;
    if (down === undefined) problems.downloadLimit = RATE_HINT;
    setErrors(problems);
    setFailure(undefined);
    if (Object.keys(problems).length > 0) return;
    const body = {
      name: form.name.trim(),
      ...(editing ? {} : { kind: form.kind, location: form.location.trim() }),
      ...(form.kind === 's3' && form.accessKeyId.trim() ? { accessKeyId: form.accessKeyId.trim(), secretAccessKey: form.secretAccessKey, ...(form.region.trim() ? { region: form.region.trim() } : {}) } : {}),
      uploadLimit: up,
      downloadLimit: down,
    };
    setBusy(true);
    try {
      const saved = editing ? await patch<Destination>(`/api/destinations/${editing.id}`, body) : await post<Destination>('/api/destinations', body);
      void client.invalidateQueries({ queryKey: keys.destinations });
      toast.ok(`Destination ${saved.name} saved`);
      onSaved?.(saved);
      onClose();
    } catch (err) {
      const field = err instanceof ApiError && (err.status === 400 || err.status === 409) ? fieldOf(err.message) : undefined;
      if (field) setErrors({ [field]: err instanceof Error ? err.message : String(err) });
      else setFailure(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Dialog
      open={open}
      onClose={onClose}
      wide
      title={editing ? `Destination ${editing.name}` : 'New destination'}
      description={editing ? 'The kind and location of a destination stay: its snapshots are there. Add a new destination to move.' : undefined}
      footer={
        <>
          <Button onClick={onClose}>Cancel</Button>
          <Button variant="primary" type="submit" form="destination-form" busy={busy}>
            Save destination
          </Button>
        </>
      }
    >
      <form id="destination-form" noValidate onSubmit={(e) => void submit(e)} className="grid gap-4 sm:grid-cols-2">
        <Field label="Name" error={errors.name}>
          {(p) => <Input {...p} value={form.name} onChange={set('name')} maxLength={100} autoFocus />}
        </Field>
        <Field label="Kind">
          {(p) => (
            <Select {...p} value={form.kind} onChange={set('kind')} disabled={editing !== undefined}>
              <option value="s3">S3 bucket (write-only for agents)</option>
              <option value="location">Path or SFTP, opened by the agent</option>
            </Select>
          )}
        </Field>
        <Field className="sm:col-span-2" label="Location" error={errors.location} hint={form.kind === 's3' ? 's3:https://host/bucket/prefix — each user gets their own folder under it.' : 'A path on the agent (/mnt/backup) or sftp://user@host/path.'}>
          {(p) => <Input {...p} value={form.location} onChange={set('location')} disabled={editing !== undefined} className="font-mono" placeholder={form.kind === 's3' ? 's3:https://s3.example.com/backups/coffer' : '/mnt/backup/coffer'} />}
        </Field>
        {form.kind === 's3' ? (
          <>
            <Field label="Access key id" error={errors.accessKeyId} hint={editing ? (editing.hasCredentials ? 'Leave empty to keep the current credentials.' : undefined) : undefined}>
              {(p) => <Input {...p} value={form.accessKeyId} onChange={set('accessKeyId')} autoComplete="off" />}
            </Field>
            <Field label="Secret access key" error={errors.secretAccessKey}>
              {(p) => <Input {...p} type="password" value={form.secretAccessKey} onChange={set('secretAccessKey')} autoComplete="new-password" />}
            </Field>
            <Field label="Region" hint="Optional; most S3-compatible services ignore it.">
              {(p) => <Input {...p} value={form.region} onChange={set('region')} placeholder="us-east-1" />}
            </Field>
            <div />
          </>
        ) : null}
        <Field label="Upload limit" error={errors.uploadLimit} hint={RATE_HINT}>
          {(p) => <Input {...p} value={form.uploadLimit} onChange={set('uploadLimit')} />}
        </Field>
        <Field label="Download limit" error={errors.downloadLimit} hint={RATE_HINT}>
          {(p) => <Input {...p} value={form.downloadLimit} onChange={set('downloadLimit')} />}
        </Field>
        {failure ? <ErrorBox className="sm:col-span-2" error={failure} title="Could not save the destination" /> : null}
      </form>
    </Dialog>
  );
}
