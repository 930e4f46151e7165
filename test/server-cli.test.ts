// `coffer server` and `coffer agent` as a user runs them: mistakes get one line, the systemd unit, and a
// server with --local-agent that enrolls this machine by itself and shuts down cleanly.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { until } from './helpers/agent.ts';
import { coffer, cofferAsync, tempDir } from './helpers/cli.ts';

test('mistakes on the command line get one line saying what to do', () => {
  const cases: [string[], RegExp][] = [
    [['server', '--listen', 'localhost:http'], /--listen takes HOST:PORT or PORT/],
    [['server', '--database-url', 'mysql://db/x'], /databaseUrl: a PostgreSQL URL starts with postgres/],
    [['server', '--tls-cert', 'cert.pem'], /give both tlsCert and tlsKey/],
    [['agent'], /no server given: use --server URL/],
    [['agent', '--server', 'backup.example.com:8470', '--key', 'cof_abcdefghijklmnopqrstuvwxyz'], /give the URL with its scheme, e\.g\. http:\/\/backup\.example\.com:8470/],
    [['agent', '--server', 'http://127.0.0.1:1'], /no API key given/],
    [['agent', '--server', 'http://127.0.0.1:1', '--key', 'hunter2'], /not a coffer API key/],
    [['agent', '--server', 'http://127.0.0.1:1', '--key', 'cof_abcdefghijklmnopqrstuvwxyz', '--capacity', 'lots'], /--capacity takes a whole number from 1 to 64/],
    [['agent', '--server', 'http://127.0.0.1:1', '--key', 'cof_abcdefghijklmnopqrstuvwxyz', '--transport', 'carrier-pigeon'], /transport/],
    [['agent', '--server', 'http://127.0.0.1:1', '--key', 'cof_abcdefghijklmnopqrstuvwxyz', '--label', 'nas', '--label', '../etc'], /--label: label "\.\.\/etc": use 1 to 50 letters/],
  ];
  for (const [args, message] of cases) {
    const r = coffer(args, { env: { COFFER_PASSWORD: undefined, DATABASE_URL: undefined } });
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
    assert.equal(r.stderr.trim().split('\n').filter((l) => !l.startsWith('warning:')).length <= 2, true, `short: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /unexpected error|    at /);
  }
  const noPass = coffer(['agent', '--server', 'http://127.0.0.1:1', '--key', 'cof_abcdefghijklmnopqrstuvwxyz'], { env: { COFFER_PASSWORD: undefined } });
  assert.match(noPass.stderr, /needs the repository passphrase without asking/);
  const refused = coffer(['agent', '--server', 'http://127.0.0.1:1', '--key-file', '/nonexistent/key']);
  assert.equal(refused.code, 1);
});

test('agent install writes a systemd unit that reads the key and passphrase from files', (t) => {
  const dir = tempDir(t);
  const unitFile = path.join(dir, 'coffer-agent.service');
  const keyFile = path.join(dir, 'etc', 'agent.key');
  const r = coffer(['agent', 'install', '--server', 'https://backup.example.com', '--key', 'cof_abcdefghijklmnopqrstuvwxyz', '--key-file', keyFile, '--password-file', '/etc/coffer/pass', '--unit-file', unitFile, '--capacity', '3', '--label', 'nas', '--label', 'rack-2']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600);
  const unit = fs.readFileSync(unitFile, 'utf8');
  assert.match(unit, /^Environment="MALLOC_ARENA_MAX=2"$/m);
  assert.match(unit, /^ExecStart="[^"]*" "--max-semi-space-size=\d+" ".*main\.ts" "agent" "--server" "https:\/\/backup\.example\.com" "--key-file" ".*agent\.key" "--password-file" "\/etc\/coffer\/pass" "--capacity" "3" "--label" "nas" "--label" "rack-2"$/m);
  assert.match(unit, /^Restart=always$/m);
  assert.ok(!unit.includes('cof_abcdefghijklmnopqrstuvwxyz'), 'the key is not in the unit');
  const noPass = coffer(['agent', 'install', '--server', 'https://b.example.com', '--key-file', keyFile, '--unit-file', unitFile]);
  assert.match(noPass.stderr, /--password-file/);
});

test('a server with --local-agent enrolls this machine once the first user signs up, answers readiness, and stops cleanly on SIGTERM', async (t) => {
  const dir = tempDir(t);
  const server = cofferAsync(['server', '--listen', '127.0.0.1:0', '--data-dir', path.join(dir, 'server'), '--local-agent', '--log-file', path.join(dir, 'server.log')]);
  t.after(() => server.child.kill('SIGKILL'));
  const url = await until('the server to listen', () => /listening on (http:\/\/\S+)/.exec(server.output().stdout)?.[1], 30_000);
  assert.equal((await fetch(`${url}/readyz`)).status, 200);
  const signup = await fetch(`${url}/api/auth/signup`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'me@example.com', password: 'correct horse battery' }) });
  const cookie = signup.headers.get('set-cookie')!.split(';')[0]!;
  const agents = await until('the local agent', async () => {
    const list = (await (await fetch(`${url}/api/agents`, { headers: { cookie } })).json()) as { status: string }[];
    return list.length === 1 && list[0]!.status === 'online' ? list : undefined;
  }, 30_000);
  assert.equal(agents.length, 1);
  const keys = (await (await fetch(`${url}/api/keys`, { headers: { cookie } })).json()) as { name: string }[];
  assert.match(keys[0]!.name, /^local agent/);
  assert.equal(fs.statSync(path.join(dir, 'server', 'local-agent.key')).mode & 0o777, 0o600);
  server.child.kill('SIGTERM');
  const done = await server.done;
  assert.equal(done.code, 0, done.stderr);
  const log = fs.readFileSync(path.join(dir, 'server.log'), 'utf8');
  assert.match(log, /"msg":"shutting down"/);
  assert.match(log, /"msg":"stopped"/);
  assert.ok(!log.includes('correct horse battery'), 'no password in the log');
});
