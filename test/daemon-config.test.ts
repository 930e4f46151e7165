import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { checkConfigText, loadConfig } from '../src/config/config-file.ts';
import { parseDuration } from '../src/config/duration.ts';
import { credentialsFromCommand, CredentialsError, parseCredentials } from '../src/daemon/credentials.ts';
import { coffer, jsonLines, tempDir } from './helpers/cli.ts';
import { startS3Server } from './helpers/s3-server.ts';

const FULL = `
email:
  smtp: { host: 127.0.0.1, port: 2525, user: coffer, passwordCommand: "pass show smtp" }
  from: coffer@example.com
notify:
  email: [ops@example.com]
  summary: weekly
daemon: { concurrency: 2 }
plans:
  app:
    repos: [/srv/backup/coffer]
    paths: [/srv/app/uploads]
    schedule: { cron: "30 2 * * *", timezone: Europe/Berlin }
    queuePriority: 10
    maxAge: 26h
    staleAfter: 10m
    hooks:
      before: systemctl stop app-worker
      after: { command: systemctl start app-worker, timeout: 2m }
      onFailure: logger -t coffer "backup of app failed"
    sources:
      - { type: postgres, database: app, host: /var/run/postgresql, user: backup }
      - { type: sqlite, path: /srv/app/cache.db }
      - { type: mysql, database: shop, socket: /run/mysqld/mysqld.sock }
      - { type: command, command: "gbak -b employee stdout", filename: employee.fbk }
    notify: { ping: "https://hc.example.com/ping/1234", on: [failure, recovery] }
    credentialsCommand: pass show coffer/s3
  photos:
    repos: [/srv/backup/photos]
    paths: [/srv/photos]
    schedule: "0 4 * * 0"
`;

test('a complete configuration with schedules, hooks, sources and notifications is valid', () => {
  const { config, problems } = checkConfigText(FULL);
  assert.deepEqual(problems, []);
  assert.equal(config!.plans.app!.schedule!.timezone, 'Europe/Berlin');
  assert.deepEqual(config!.plans.photos!.schedule, { cron: '0 4 * * 0' });
  assert.deepEqual(config!.plans.app!.hooks!.before, { command: 'systemctl stop app-worker' });
  assert.equal(config!.plans.app!.sources!.length, 4);
});

test('config check names the line and field of every problem, unknown fields by name', (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'config.yaml');
  fs.writeFileSync(
    file,
    [
      'plans:', //                                        1
      '  app:', //                                        2
      '    repos: [/srv/backup]', //                      3
      '    paths: [/srv/app]', //                         4
      '    schedul: "0 3 * * *"', //                      5
      '    schedule: { cron: "0 25 * * *" }', //          6
      '    maxAge: 26 hours', //                          7
      '    sources:', //                                  8
      '      - { type: postgres, databse: app }', //      9
      '      - { type: oracle, database: x }', //        10
      '    hooks: { after: { command: x, timout: 5m } }', // 11
      '    notify: { email: [ops-at-example.com] }', //  12
      'daemon: { concurency: 2 }', //                   13
    ].join('\n'),
  );
  const r = coffer(['config', 'check', '--config', file]);
  assert.equal(r.code, 1);
  const lines = r.stderr.trim().split('\n');
  const expect = [
    [5, 'plans.app.schedul', /unknown field "schedul"/],
    [6, 'plans.app.schedule.cron', /"0 25 \* \* \*" is not a cron schedule/],
    [7, 'plans.app.maxAge', /not a duration/],
    [9, 'plans.app.sources.0.database', /missing/],
    [9, 'plans.app.sources.0.databse', /unknown field "databse"/],
    [10, 'plans.app.sources.1.type', /postgres|expected/i],
    [11, 'plans.app.hooks.after.timout', /unknown field "timout"/],
    [12, 'plans.app.notify.email.0', /not an email address/],
    [13, 'daemon.concurency', /unknown field "concurency"/],
  ] as const;
  for (const [line, field, message] of expect) {
    const found = lines.find((l) => l.startsWith(`${file} line ${line}: ${field}: `));
    assert.ok(found && message.test(found), `line ${line} ${field} in:\n${r.stderr}`);
  }
  assert.match(lines.at(-1)!, /^coffer: 9 problems in .*config\.yaml; fix them/);
  assert.doesNotMatch(r.stderr, /at .*\.ts:\d+/, 'no stack trace');
  // Every command that reads the file stops at the first problem, with its line.
  assert.throws(() => loadConfig(file), /config\.yaml line 5: plans\.app\.schedul: unknown field "schedul".*and 8 more/);

  const json = coffer(['config', 'check', '--config', file, '--json']);
  assert.equal(json.code, 1);
  const report = jsonLines(json.stdout)[0]!;
  assert.equal(report.ok, false);
  assert.equal((report.problems as unknown[]).length, 9);
});

test('pruneEvery: a plan without retention, 0 and 1.5 are problems in words, with their line; zod bounds read as words elsewhere too', (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'config.yaml');
  fs.writeFileSync(
    file,
    [
      'plans:', //                                        1
      '  bare:', //                                       2
      '    repos: [/srv/backup]', //                      3
      '    paths: [/srv/app]', //                         4
      '    pruneEvery: 3', //                             5
      '  zero:', //                                       6
      '    repos: [/srv/backup]', //                      7
      '    paths: [/srv/app]', //                         8
      '    retention: { keepLast: 3 }', //                9
      '    pruneEvery: 0', //                            10
      '  half:', //                                      11
      '    repos: []', //                                12
      '    paths: [/srv/app]', //                        13
      '    pruneEvery: 1.5', //                          14
      '    workers: 65', //                              15
    ].join('\n'),
  );
  const r = coffer(['config', 'check', '--config', file]);
  assert.equal(r.code, 1);
  const lines = r.stderr.trim().split('\n');
  const numberOfRuns = 'a whole number of runs, 1 or more: the daemon prunes after every N-th successful run (1: after each)';
  assert.deepEqual(lines.slice(0, -1), [
    `${file} line 5: plans.bare.pruneEvery: is set, but the plan has no retention policy, so its runs forget nothing and a prune would free nothing; add one (retention: { keepDaily: 7, keepWeekly: 4 }) or remove pruneEvery`,
    `${file} line 10: plans.zero.pruneEvery: ${numberOfRuns}`,
    `${file} line 12: plans.half.repos: must list 1 or more entries`,
    `${file} line 14: plans.half.pruneEvery: ${numberOfRuns}`,
    `${file} line 15: plans.half.workers: must be 64 or less`,
  ]);
  assert.match(lines.at(-1)!, /^coffer: 5 problems in .*config\.yaml; fix them/);
  // Loading stops at the first problem, so the daemon never starts with a pruneEvery that does nothing.
  assert.throws(() => loadConfig(file), /config\.yaml line 5: plans\.bare\.pruneEvery: is set, but the plan has no retention policy.*and 4 more/);
  fs.writeFileSync(file, 'plans:\n  ok:\n    repos: [/srv/backup]\n    paths: [/srv/app]\n    retention: { keepLast: 3 }\n    pruneEvery: 2\n');
  assert.equal(loadConfig(file).plans.ok!.pruneEvery, 2);
});

test('a retention whose rules keep nothing (every count 0) is a problem with its line: forget would refuse it at every run', (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'config.yaml');
  fs.writeFileSync(file, 'plans:\n  none:\n    repos: [/srv/backup]\n    paths: [/srv/app]\n    retention: { keepLast: 0, keepDaily: 0 }\n');
  const r = coffer(['config', 'check', '--config', file]);
  assert.equal(r.code, 1);
  assert.equal(r.stderr.trim().split('\n')[0], `${file} line 5: plans.none.retention: keeps no snapshot: give a count of 1 or more (-1 for every period), a keepWithin… duration or a keepTag; forget never removes every snapshot`);
});

test('config check on a good file lists the plans and their next run; YAML syntax errors have a line'
, (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'config.yaml');
  fs.writeFileSync(file, FULL);
  const r = coffer(['config', 'check', '--config', file]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /ok, 2 plans/);
  assert.match(r.stdout, /app: 30 2 \* \* \* \(Europe\/Berlin\), next run 20\d\d-/);
  fs.writeFileSync(file, 'plans:\n  app:\n    repos: [/x\n');
  const bad = coffer(['config', 'check', '--config', file]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /config\.yaml line \d: /);
  const missing = coffer(['config', 'check', '--config', path.join(dir, 'nope.yaml')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^coffer: no configuration file at .*nope\.yaml; write one with coffer setup/);
});

test('durations', () => {
  assert.equal(parseDuration('90s'), 90_000);
  assert.equal(parseDuration('1h30m'), 5_400_000);
  assert.equal(parseDuration('7d'), 604_800_000);
  for (const bad of ['', '5', 'five minutes', '5 m', '-5m']) assert.equal(parseDuration(bad), undefined, bad);
});

test('credentials: NAME=value lines or JSON; errors never show a value', async () => {
  assert.deepEqual(parseCredentials('# from pass\nexport AWS_ACCESS_KEY_ID=AKIA1\nAWS_SECRET_ACCESS_KEY="s3cr=t"\n\n'), { AWS_ACCESS_KEY_ID: 'AKIA1', AWS_SECRET_ACCESS_KEY: 's3cr=t' });
  assert.deepEqual(parseCredentials('{"Version":1,"AccessKeyId":"AKIA2","SecretAccessKey":"x","SessionToken":"t","Expiration":"2030-01-01T00:00:00Z"}'), {
    AWS_ACCESS_KEY_ID: 'AKIA2',
    AWS_SECRET_ACCESS_KEY: 'x',
    AWS_SESSION_TOKEN: 't',
  });
  assert.deepEqual(parseCredentials('{"COFFER_SFTP_PASSWORD":"pw"}'), { COFFER_SFTP_PASSWORD: 'pw' });
  assert.throws(() => parseCredentials('AWS_ACCESS_KEY_ID=a\nhunter2'), (e: Error) => e instanceof CredentialsError && /line 2/.test(e.message) && !e.message.includes('hunter2'));
  assert.throws(() => parseCredentials('{"a": 1}'), (e: Error) => !e.message.includes('1}'));
  assert.deepEqual(await credentialsFromCommand("printf 'AWS_ACCESS_KEY_ID=k\\nAWS_SECRET_ACCESS_KEY=s\\n'"), { AWS_ACCESS_KEY_ID: 'k', AWS_SECRET_ACCESS_KEY: 's' });
  await assert.rejects(credentialsFromCommand('echo SECRET=topsecret; echo "vault is sealed" >&2; exit 3'), (e: Error) => /failed \(exit 3\): vault is sealed/.test(e.message) && !e.message.includes('topsecret'));
  await assert.rejects(credentialsFromCommand('sleep 5', { timeoutMs: 100 }), /time limit/);
});

test('backup --plan gets S3 credentials from credentialsCommand, never from a file; a failing command is one clear line', async (t) => {
  const server = await startS3Server();
  t.after(() => server.stop());
  const dir = tempDir(t);
  const source = path.join(dir, 'source');
  fs.mkdirSync(source);
  fs.writeFileSync(path.join(source, 'a.txt'), 'hello');
  const repo = `s3:${server.endpoint}/${server.bucket}/repo`;
  const keys = { AWS_ACCESS_KEY_ID: server.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: server.credentials.secretAccessKey };
  const noKeys = { AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined };
  const config = path.join(dir, 'config.yaml');
  const plan = (command: string) =>
    fs.writeFileSync(config, `plans:\n  s3:\n    repos: ["${repo}"]\n    paths: [${source}]\n    credentialsCommand: ${JSON.stringify(command)}\n`);
  assert.equal(coffer(['init', '--repo', repo], { env: keys }).code, 0);
  plan(`printf 'AWS_ACCESS_KEY_ID=${keys.AWS_ACCESS_KEY_ID}\\nAWS_SECRET_ACCESS_KEY=${keys.AWS_SECRET_ACCESS_KEY}\\n'`);
  const r = coffer(['backup', '--plan', 's3', '--config', config], { env: noKeys });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /snapshot \w+ saved/);
  // Every command given --plan opens the stores with them; a configuration-wide command serves every plan.
  const printKeys = `printf 'AWS_ACCESS_KEY_ID=${keys.AWS_ACCESS_KEY_ID}\\nAWS_SECRET_ACCESS_KEY=${keys.AWS_SECRET_ACCESS_KEY}\\n'`;
  fs.writeFileSync(config, `credentialsCommand: ${JSON.stringify(printKeys)}\nplans:\n  s3:\n    repos: ["${repo}"]\n    paths: [${source}]\n`);
  const listed = coffer(['snapshots', '--plan', 's3', '--config', config], { env: noKeys });
  assert.equal(listed.code, 0, listed.stderr);
  assert.match(listed.stdout, /^1 snapshot$/m);
  plan('echo "vault is sealed" >&2; exit 3');
  const failed = coffer(['backup', '--plan', 's3', '--config', config], { env: noKeys });
  assert.equal(failed.code, 1);
  assert.match(failed.stderr, /^coffer: the credentials command failed \(exit 3\): vault is sealed; run it by hand to see why\n$/);
});

test('backup --plan runs credentialsCommand again before each retry: short-lived credentials expire while a retry waits', (t) => {
  const dir = tempDir(t);
  const source = path.join(dir, 'source');
  fs.mkdirSync(source);
  fs.writeFileSync(path.join(source, 'a.txt'), 'hello');
  const repo = path.join(dir, 'repo');
  const calls = path.join(dir, 'calls');
  const ran = path.join(dir, 'ran');
  // The dump fails on its first run only (a retryable source error); every credentials call leaves a line.
  const dump = `if [ -e ${ran} ]; then echo dump; else touch ${ran}; exit 1; fi`;
  const config = path.join(dir, 'config.yaml');
  fs.writeFileSync(
    config,
    `retries: { max: 1, delays: [1] }\nplans:\n  p:\n    repos: [${repo}]\n    paths: [${source}]\n` +
      `    sources: [{ type: command, command: ${JSON.stringify(dump)}, filename: dump.txt }]\n` +
      `    credentialsCommand: ${JSON.stringify(`echo call >> ${calls}; echo AWS_PROFILE=none`)}\n`,
  );
  const env = { COFFER_DATA_DIR: path.join(dir, 'data') };
  assert.equal(coffer(['init', '--repo', repo], { env }).code, 0);
  const r = coffer(['backup', '--plan', 'p', '--config', config], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /attempt 1 failed: .*retrying in/);
  assert.equal(fs.readFileSync(calls, 'utf8'), 'call\ncall\n', 'once for the first attempt, once for the retry');
});

test("the README's example of unattended runs is a valid configuration", () => {
  const readme = fs.readFileSync(path.join(import.meta.dirname, '..', 'README.md'), 'utf8');
  const block = /\*\*Unattended runs\.\*\*[^]*?```yaml\n([^]*?)```/.exec(readme)?.[1];
  assert.ok(block, 'the example is in the README');
  assert.deepEqual(checkConfigText(block).problems, []);
});

test('rules across fields: email notifications need an email section, a plan with only sources is fine, two sources may not share a name', () => {
  const { problems } = checkConfigText(
    'plans:\n  db:\n    repos: [/r]\n    sources:\n      - { type: postgres, database: app }\n      - { type: command, command: x, filename: app.sql }\n    notify: { email: [ops@example.com] }\n  empty:\n    repos: [/r]\n',
  );
  assert.deepEqual(
    problems.map((p) => [p.line, p.field, p.message]),
    [
      [6, 'plans.db.sources.1', 'another source of this plan is also stored as app.sql; give one of them its own filename'],
      [7, 'plans.db.notify.email', 'is set, but there is no top-level email section (smtp and from) to send it with'],
      [9, 'plans.empty.paths', 'a plan backs up paths (or filesFrom), sources (database dumps, commands) or both; give at least one'],
    ],
  );
});
