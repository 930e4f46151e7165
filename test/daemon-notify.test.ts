// Notifications: email to a real SMTP server (also with a refused login and with the server down),
// webhooks with retries and healthchecks-style pings to a local HTTP server, and a real daemon that
// notifies a failure after its last retry, the recovery, a plan past its maxAge, a destination failing
// its test-write and the daily summary — short messages that say what to do and hold no secret.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { freePort } from './helpers/postgres.ts';
import { NotifyError, ping, postWebhook, sendEmail } from '../src/daemon/notify/channels.ts';
import { compose } from '../src/daemon/notify/messages.ts';
import { ok, tempDir } from './helpers/cli.ts';
import { DaemonProcess } from './helpers/daemon.ts';
import { startHookServer, startSmtp } from './helpers/notify-servers.ts';

const quick = { retryDelaysMs: [50, 100], timeoutMs: 5_000 };

test('email reaches a real SMTP server; a refused login and a server that is down fail with what to check', async (t) => {
  const smtp = await startSmtp('coffer', 'smtp-pw');
  t.after(() => smtp.close());
  const dir = tempDir(t);
  const pw = path.join(dir, 'smtp-pw');
  fs.writeFileSync(pw, 'smtp-pw\n');
  const settings = { smtp: { host: '127.0.0.1', port: smtp.port, user: 'coffer', passwordFile: pw }, from: 'coffer@backup.example' };
  const message = compose({ kind: 'failure', plan: 'db', jobId: 12, error: 'reading s3:https://AKIA:topsecret@s3.example.com/b failed', attempts: 4 }, 'nas');
  await sendEmail(settings, ['ops@example.com', 'dba@example.com'], message, quick);
  const mail = smtp.mails[0]!;
  assert.equal(mail.from, 'coffer@backup.example');
  assert.deepEqual(mail.to, ['ops@example.com', 'dba@example.com']);
  assert.equal(mail.subject, 'coffer: backup of db failed on nas');
  assert.match(mail.body, /failed after 4 attempts \(job 12\)/);
  assert.match(mail.body, /What to do: on nas, read the log with "coffer logs 12"/);
  assert.doesNotMatch(mail.raw, /topsecret|smtp-pw/);

  fs.writeFileSync(pw, 'wrong\n');
  await assert.rejects(sendEmail(settings, ['ops@example.com'], message, quick), (e: Error) => e instanceof NotifyError && /the SMTP server refused the login \(535.*\); check email\.smtp\.user and its password/.test(e.message) && !/wrong/.test(e.message));
  assert.deepEqual(smtp.refused, ['coffer'], 'a refused login is not retried');

  const down = { ...settings, smtp: { ...settings.smtp, port: await freePort() } };
  await assert.rejects(sendEmail(down, ['ops@example.com'], message, quick), /cannot reach the SMTP server \(ECONNREFUSED.*\); check email\.smtp\.host and port \(gave up after 3 attempts\)/);
});

test('webhooks retry a server error and give up on a wrong URL; pings go to URL/start, URL and URL/fail', async (t) => {
  const hooks = await startHookServer();
  t.after(() => hooks.close());
  hooks.failNext('/hook', 2, 503);
  await postWebhook(`${hooks.url}/hook`, { kind: 'failure', plan: 'db' }, quick);
  assert.deepEqual(hooks.hits.map((h) => h.status), [503, 503, 200]);
  assert.deepEqual(JSON.parse(hooks.hits[2]!.body), { kind: 'failure', plan: 'db' });
  hooks.failNext('/gone', 5, 404);
  await assert.rejects(postWebhook(`${hooks.url}/gone`, {}, quick), /answered 404 Not Found; check the URL$/);
  assert.equal(hooks.hits.filter((h) => h.path === '/gone').length, 1);
  await ping(`${hooks.url}/ping/abc`, 'start', '', quick);
  await ping(`${hooks.url}/ping/abc`, 'success', '', quick);
  await ping(`${hooks.url}/ping/abc/`, 'fail', 'disk full', quick);
  assert.deepEqual(hooks.hits.slice(-3).map((h) => `${h.path} ${h.body}`), ['/ping/abc/start ', '/ping/abc ', '/ping/abc/fail disk full']);
});

test('the daemon notifies a failure after the last retry, the recovery, a plan past its maxAge, a failing test-write and the daily summary', async (t) => {
  const smtp = await startSmtp('coffer', 'smtp-pw');
  t.after(() => smtp.close());
  const hooks = await startHookServer();
  t.after(() => hooks.close());
  const dir = tempDir(t);
  const repo = path.join(dir, 'repo');
  const source = path.join(dir, 'source');
  fs.mkdirSync(source);
  fs.writeFileSync(path.join(source, 'a'), 'a');
  ok(['init', '--repo', repo]);
  const pw = path.join(dir, 'smtp-pw');
  fs.writeFileSync(pw, 'smtp-pw\n');
  const healthy = path.join(dir, 'db-is-up');
  fs.writeFileSync(path.join(dir, 'blocker'), '');
  // The database is down until the test creates the flag file.
  const dumpCommand = `test -e ${healthy} || { echo "could not connect to the database server" >&2; exit 2; }; echo data`;
  hooks.failNext('/hook', 1, 500);
  const daemon = await DaemonProcess.start(t, {
    config: `
email:
  smtp: { host: 127.0.0.1, port: ${smtp.port}, user: coffer, passwordFile: ${pw} }
  from: coffer@backup.example
notify:
  email: [ops@example.com]
  webhooks: ["${hooks.url}/hook"]
  summary: daily
plans:
  db:
    repos: [${repo}]
    sources: [{ type: command, command: '${dumpCommand}', filename: db.sql }]
    notify: { email: [dba@example.com], ping: "${hooks.url}/ping/db" }
  stale:
    repos: [${repo}]
    paths: [${source}]
    maxAge: 1s
  elsewhere:
    repos: [${path.join(dir, 'blocker', 'repo')}]
    paths: [${source}]
    notify: { email: [ops@example.com], on: [test-write] }
retries: { max: 1, delays: [0.5] }
`,
  });
  // A destination that cannot be written is found by the start-up test-write.
  const testWrite = await smtp.waitFor((m) => /failed its test-write/.test(m.subject));
  assert.match(testWrite.subject, /^coffer: destination .*blocker\/repo failed its test-write on \S+$/);
  assert.match(testWrite.body, /Backups of elsewhere will not reach it until this is fixed/);
  // A plan that never succeeded, past its maxAge.
  const overdue = await smtp.waitFor((m) => /no backup of stale/.test(m.subject));
  assert.match(overdue.body, /has had no successful backup for longer than its maxAge of 1 s\. Last success: never\./);
  assert.deepEqual(overdue.to, ['ops@example.com']);

  // A failure: the first attempt is retried without a word, the second is notified, by email, webhook and ping.
  await daemon.run('db');
  const failed = await smtp.waitFor((m) => m.subject.startsWith('coffer: backup of db failed'));
  assert.deepEqual(failed.to, ['dba@example.com'], "the plan's own notify replaces the top-level one");
  assert.match(failed.body, /failed after 2 attempts \(job \d+\):\n {2}\/db\.sql: the command of source db\.sql exited with status 2: could not connect to the database server; no snapshot was made/);
  assert.equal(smtp.mails.filter((m) => m.subject.startsWith('coffer: backup of db failed')).length, 1);
  await hooks.waitFor((h) => h.path === '/ping/db/fail' && /could not connect/.test(h.body));
  assert.equal(hooks.hits.filter((h) => h.path === '/ping/db/start').length, 2, 'each attempt pings start');

  fs.writeFileSync(healthy, '');
  await daemon.run('db');
  const recovered = await smtp.waitFor((m) => /works again/.test(m.subject));
  assert.match(recovered.body, /The backup of plan db on \S+ succeeded \(job \d+, snapshot [0-9a-f]{8}\) after failing since .*\.\nNothing to do\./);
  await hooks.waitFor((h) => h.path === '/ping/db');

  // The top-level webhook heard the test-write and overdue notifications (after one retry of a 500).
  const webhook = await hooks.waitFor((h) => h.path === '/hook' && h.status === 200 && JSON.parse(h.body).kind === 'overdue');
  assert.equal(JSON.parse(webhook.body).type, 'coffer-notification');

  // A day later: the daily summary.
  daemon.jumpClock(25 * 3_600_000);
  const summary = await smtp.waitFor((m) => /daily summary/.test(m.subject));
  assert.match(summary.subject, /^coffer: daily summary for \S+: \d+ runs, \d+ failed$/);
  assert.match(summary.body, /^ {2}db: 3 runs, 2 failed, .* added, last success \d{4}-/m);
  assert.match(summary.body, /Destinations \(last success\):\n {2}.*repo: \d{4}-/);
  await daemon.stop();
  assert.doesNotMatch(daemon.log + smtp.mails.map((m) => m.raw).join(''), /smtp-pw/);
  // Nothing is said twice: a restart remembers what was notified.
  const before = smtp.mails.length;
  await daemon.launch();
  await new Promise((resolve) => setTimeout(resolve, 2000));
  await daemon.stop();
  assert.equal(smtp.mails.length, before, smtp.mails.slice(before).map((m) => m.subject).join(' | '));
});
