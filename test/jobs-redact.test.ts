import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveDataDir } from '../src/jobs/data-dir.ts';
import { REDACTED, errorText, isSecretKey, redact, redactString } from '../src/jobs/redact.ts';
import { jobFixture, photosPlan } from './helpers/jobs.ts';

test('secret-looking keys', () => {
  const secret = ['password', 'PASSWORD', 'passphrase', 'secret', 'token', 'apiKey', 'api_key', 'key', 'accessKeyId',
    'AWS_SECRET_ACCESS_KEY', 'sessionToken', 'Authorization', 'cookie', 'X-Amz-Signature', 'X-Amz-Credential', 'client-secret'];
  const plain = ['path', 'host', 'user', 'username', 'keyfile', 'monkey', 'author', 'bytesDone', 'passes', 'tokenizer'];
  assert.deepEqual(secret.filter((k) => !isSecretKey(k)), []);
  assert.deepEqual(plain.filter((k) => isSecretKey(k)), []);
});

test('credentials are cut out of URLs in any string', () => {
  const cases: [string, string][] = [
    ['sftp://me:hunter2@nas:2222/backups', 'sftp://nas:2222/backups'],
    ['s3:https://AKIA:wJalr/XUt@s3.example.com/bucket', 's3:https://s3.example.com/bucket'],
    ['failed to reach http://u:p@a.example and https://v:q@b.example/x', 'failed to reach http://a.example and https://b.example/x'],
    ['https://h/o?X-Amz-Credential=AKIA%2F&X-Amz-Expires=60&X-Amz-Signature=abc', `https://h/o?X-Amz-Credential=${REDACTED}&X-Amz-Expires=60&X-Amz-Signature=${REDACTED}`],
    ['https://hooks.example/notify?token=abc#frag', `https://hooks.example/notify?token=${REDACTED}#frag`],
    ['rest:https://ann:hunter2@backup.lan:8000/ann/', 'rest:https://backup.lan:8000/ann/'],
    ['rclone::s3,provider=Minio,access_key_id=AKIA,secret_access_key="a,b":bucket/x', `rclone::s3,provider=Minio,access_key_id=${REDACTED},secret_access_key=${REDACTED}:bucket/x`],
    // A user name alone is not a secret, and plain text is left alone.
    ['sftp://backup@nas/coffer', 'sftp://backup@nas/coffer'],
    ['ratio 3:1 at 12:00 for me@example.com', 'ratio 3:1 at 12:00 for me@example.com'],
  ];
  for (const [input, expected] of cases) assert.equal(redactString(input), expected);
});

test('redact copies a value with secrets blanked at any depth', () => {
  const shared = { host: 'nas' };
  const circular: Record<string, unknown> = { name: 'loop' };
  circular.self = circular;
  const input = {
    repo: 'sftp://me:pw@nas/x',
    credentials: { accessKeyId: 'AKIA', secretAccessKey: 'wJalr' },
    destinations: [{ name: 'b2', key: 'K001', url: 'https://k:s@b2.example' }, shared, shared],
    password: null,
    token: undefined,
    when: new Date(Date.UTC(2026, 0, 1)),
    data: Buffer.alloc(3),
    size: 10n,
    error: Object.assign(new Error('denied for https://u:p@host'), { code: 'EACCES', cause: new Error('token=1') }),
    circular,
    skip: () => 1,
  };
  assert.deepEqual(redact(input), {
    repo: 'sftp://nas/x',
    credentials: REDACTED,
    destinations: [{ name: 'b2', key: REDACTED, url: 'https://b2.example' }, { host: 'nas' }, { host: 'nas' }],
    password: null,
    when: '2026-01-01T00:00:00.000Z',
    data: '[3 bytes]',
    size: '10',
    error: { name: 'Error', message: 'denied for https://host', code: 'EACCES', cause: { name: 'Error', message: 'token=1' } },
    circular: { name: 'loop', self: '[circular]' },
  });
  assert.equal(errorText(new Error('GET https://a:b@h/x failed')), 'GET https://h/x failed');
  assert.equal(errorText('plain https://a:b@h'), 'plain https://h');
});

test('nothing secret reaches the job database', (t) => {
  const f = jobFixture(t);
  const planId = f.store.ensurePlan('offsite', [{ name: 'b2', location: 's3:https://AKIA:wJalr@s3.example.com/b' }]).id;
  photosPlan(f.store);
  const run = f.store.acquirePlanRun(planId);
  run.warn('slow upload to sftp://me:hunter2@nas', { apiToken: 'tok-123' });
  run.fail(Object.assign(new Error('PUT https://AKIA:wJalr@s3.example.com/b/data failed'), { code: 'ECONNRESET' }));
  const dump = JSON.stringify([
    f.store.sql.all('SELECT * FROM jobs'),
    f.store.sql.all('SELECT * FROM job_events'),
    f.store.sql.all('SELECT * FROM job_runs'),
    f.store.sql.all('SELECT * FROM destinations'),
  ]);
  for (const secret of ['AKIA', 'wJalr', 'hunter2', 'tok-123']) assert.ok(!dump.includes(secret), secret);
});

test('the data directory: flag, then COFFER_DATA_DIR, then XDG_DATA_HOME, then ~/.local/share', () => {
  const home = '/home/me';
  assert.equal(resolveDataDir('/flag', { COFFER_DATA_DIR: '/env' }, home), '/flag');
  assert.equal(resolveDataDir(undefined, { COFFER_DATA_DIR: '/env', XDG_DATA_HOME: '/xdg' }, home), '/env');
  assert.equal(resolveDataDir(undefined, { XDG_DATA_HOME: '/xdg' }, home), '/xdg/coffer');
  // A relative XDG_DATA_HOME is invalid by the spec and ignored.
  assert.equal(resolveDataDir(undefined, { XDG_DATA_HOME: 'rel' }, home), '/home/me/.local/share/coffer');
  assert.equal(resolveDataDir(undefined, {}, home), '/home/me/.local/share/coffer');
});
