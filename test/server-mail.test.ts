// Email from the fleet server through a real SMTP server (smtp-server on loopback): the administrator's
// SMTP settings (password sealed, never shown, refusals named by field), a test email, each new alert to
// its owner only and once, and each person's report on their schedule, once per period.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { raiseAlert } from '../src/server/alerts/alerts.ts';
import { startSmtp, type SmtpServer } from './helpers/notify-servers.ts';
import { Client, startTestServer, type TestServer } from './helpers/server.ts';

const DAY = 24 * 3600_000;
let smtp: SmtpServer;
let server: TestServer;
let admin: Client;
let bob: Client;

before(async () => {
  smtp = await startSmtp('mailer', 'smtp secret');
  server = await startTestServer();
  admin = await new Client(server.app).signup('admin@example.com');
  await admin.json('PUT', '/api/admin/settings', { signup: 'open' });
  bob = await new Client(server.app).signup('bob@example.com');
});
after(async () => {
  await server.close();
  await smtp.close();
});

test('SMTP settings: refusals name the field; the password is sealed and never shown; a test email reaches the administrator', async () => {
  const bad = await admin.request('PUT', '/api/admin/settings', { smtp: { host: '127.0.0.1', port: 70000, from: 'coffer@example.com' } });
  assert.equal(bad.statusCode, 400);
  assert.match(bad.json().error, /port/);
  const noFrom = await admin.request('PUT', '/api/admin/settings', { smtp: { host: '127.0.0.1', from: 'not an address' } });
  assert.equal(noFrom.statusCode, 400);
  assert.match(noFrom.json().error, /from/);
  assert.equal((await bob.request('PUT', '/api/admin/settings', { smtp: null })).statusCode, 403);
  assert.equal((await admin.request('POST', '/api/admin/settings/test-email')).statusCode, 409, 'nothing to send with yet');

  const saved = await admin.json<{ smtp: Record<string, unknown> }>('PUT', '/api/admin/settings', { smtp: { host: '127.0.0.1', port: smtp.port, user: 'mailer', password: 'smtp secret', from: 'coffer@example.com' } });
  assert.deepEqual(saved.smtp, { host: '127.0.0.1', port: smtp.port, secure: false, user: 'mailer', from: 'coffer@example.com', hasPassword: true });
  const stored = await server.ctx.db.selectFrom('settings').select('value').where('key', '=', 'smtp').executeTakeFirstOrThrow();
  assert.ok(!stored.value.includes('smtp secret'), 'sealed in the database');
  // Changing the sender keeps the password.
  await admin.json('PUT', '/api/admin/settings', { smtp: { host: '127.0.0.1', port: smtp.port, user: 'mailer', from: 'fleet@example.com' } });
  assert.deepEqual(await admin.json('POST', '/api/admin/settings/test-email'), { to: ['admin@example.com'] });
  const mail = await smtp.waitFor((m) => m.subject === 'coffer: test email');
  assert.deepEqual(mail.to, ['admin@example.com']);
  assert.equal(mail.from, 'fleet@example.com');
});

test('a new alert is emailed to its owner only, once while it stays open', async () => {
  const before = smtp.mails.length;
  await raiseAlert(server.ctx, bob.userId, 'agent-offline', 'agent-1', 'agent nas is offline: no heartbeat for 30 s');
  await raiseAlert(server.ctx, bob.userId, 'agent-offline', 'agent-1', 'agent nas is offline: no heartbeat for 30 s');
  const mail = await smtp.waitFor((m) => m.subject.startsWith('coffer alert: agent nas is offline'));
  assert.deepEqual(mail.to, ['bob@example.com']);
  assert.match(mail.body, /acknowledge it; it resolves by itself/);
  await server.fleet.mailer.stop();
  assert.equal(smtp.mails.length - before, 1, 'one email, to Bob only');
});

test("each person's report is emailed on their schedule, once per period", async () => {
  assert.deepEqual(await bob.json('PUT', '/api/reports/email', { period: 'day' }), { period: 'day', to: 'bob@example.com', smtp: true });
  assert.equal((await bob.request('PUT', '/api/reports/email', { period: 'hourly' })).statusCode, 400);
  assert.equal(await server.fleet.mailer.sendDueReports(Date.now() + 1000), 0, 'not before a whole day');
  const next = Date.now() + DAY + 1000;
  assert.equal(await server.fleet.mailer.sendDueReports(next), 1);
  assert.equal(await server.fleet.mailer.sendDueReports(next + 1000), 0, 'once per period');
  const mail = await smtp.waitFor((m) => m.subject.startsWith('coffer: daily report'));
  assert.deepEqual(mail.to, ['bob@example.com']);
  assert.match(mail.body, /jobs, no backup finished/);
  assert.deepEqual(await admin.json('GET', '/api/reports/email'), { period: null, to: 'admin@example.com', smtp: true });
  await bob.json('PUT', '/api/reports/email', { period: null });
  assert.equal(await server.fleet.mailer.sendDueReports(next + 2 * DAY), 0, 'stopped');
});
