// Database dumps streamed into snapshots by a real `coffer daemon`, against real servers: PostgreSQL
// (plain and custom format, a password from a passwordCommand) restored into a fresh database and
// compared; SQLite dumped while another process writes to it; MariaDB; and a dump of a database that
// does not exist fails the run without a snapshot.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { test } from 'node:test';
import { coffer, jsonLines, ok, okBytes, tempDir } from './helpers/cli.ts';
import { DaemonProcess } from './helpers/daemon.ts';
import { mariadbAvailable, startMariaDb } from './helpers/db-servers.ts';
import { postgresAvailable, startPostgres } from './helpers/postgres.ts';

function repository(t: import('node:test').TestContext): { dir: string; repo: string } {
  const dir = tempDir(t);
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  return { dir, repo };
}

const SAMPLE_PG = `
create table customers (id serial primary key, name text not null, note text, photo bytea, balance numeric(12,2), tags jsonb, created timestamptz default '2026-01-01T00:00:00Z');
insert into customers (name, note, photo, balance, tags)
  select 'customer ' || i, case when i % 7 = 0 then null else 'ünïcødé ' || repeat('x', i % 50) end,
         decode(md5(i::text), 'hex'), i * 1.25, jsonb_build_object('i', i, 'even', i % 2 = 0)
  from generate_series(1, 20000) as i;
create view rich as select id, name from customers where balance > 20000;
create function greet(who text) returns text language sql as $$ select 'hello ' || who $$;
create sequence invoice_numbers start 1000;
select nextval('invoice_numbers');
`;

test('PostgreSQL: the daemon dumps a database (plain and custom), restored into a fresh database it is the same', { skip: !postgresAvailable() && 'no PostgreSQL server binaries' }, async (t) => {
  const pg = await startPostgres({ hostAuth: 'scram-sha-256' });
  t.after(() => pg.stop());
  pg.psql('postgres', "create database app; create role backup login password 'pg-secret-123'; grant pg_read_all_data to backup;");
  pg.psql('app', SAMPLE_PG);
  const { dir, repo } = repository(t);
  const passwordFile = path.join(dir, 'pgpass');
  fs.writeFileSync(passwordFile, 'pg-secret-123\n', { mode: 0o600 });
  const server = `host: 127.0.0.1, port: ${pg.port}, user: backup`;
  const daemon = await DaemonProcess.start(t, {
    config:
      `plans:\n  db:\n    repos: [${repo}]\n    sources:\n` +
      `      - { type: postgres, database: app, ${server}, passwordCommand: "cat ${passwordFile}" }\n` +
      `      - { type: postgres, database: app, ${server}, passwordFile: ${passwordFile}, format: custom }\n` +
      `  missing:\n    repos: [${repo}]\n    sources: [{ type: postgres, database: nope, ${server}, passwordFile: ${passwordFile} }]\n` +
      'retries: { max: 0 }\n',
  });
  await daemon.run('db');
  await daemon.waitFor(/\(plan db\) completed/);
  await daemon.run('missing');
  const failed = await daemon.waitFor(/\(plan missing\) failed: (.*); no retries left/);
  assert.match(failed[1]!, /^\/nope\.sql: pg_dump exited with status 1: .*database "nope" does not exist; no snapshot was made$/);
  await daemon.stop();
  assert.doesNotMatch(daemon.log, /pg-secret-123/);

  const snapshots = jsonLines<{ paths: string[] }>(ok(['snapshots', '--repo', repo, '--json']).stdout);
  assert.equal(snapshots.length, 1, 'the failed dump made no snapshot');
  assert.deepEqual(snapshots[0]!.paths, ['/app.pgdump', '/app.sql']);
  const plain = path.join(dir, 'app.sql');
  fs.writeFileSync(plain, okBytes(['dump', '--repo', repo, 'latest', '/app.sql']));
  const custom = path.join(dir, 'app.pgdump');
  fs.writeFileSync(custom, okBytes(['dump', '--repo', repo, 'latest', '/app.pgdump']));
  fs.chmodSync(dir, 0o755);
  for (const f of [plain, custom]) fs.chmodSync(f, 0o644);

  pg.psql('postgres', 'create database restored_plain; create database restored_custom;');
  pg.psql('restored_plain', fs.readFileSync(plain, 'utf8'));
  const restore = spawnSync('runuser', ['-u', 'postgres', '--', '/usr/lib/postgresql/15/bin/pg_restore', '-h', pg.socketDir, '-p', String(pg.port), '-U', 'coffer', '-d', 'restored_custom', '--no-owner', custom], { encoding: 'utf8' });
  assert.equal(restore.status, 0, restore.stderr);
  const fingerprint = (db: string): string =>
    pg.psql(db, "select count(*), md5(string_agg(c::text, ',' order by id)) from customers c; select greet('x'); select last_value from invoice_numbers; select count(*) from rich;");
  const original = fingerprint('app');
  assert.match(original, /^20000\|[0-9a-f]{32}\nhello x\n1000\n\d+\n$/);
  assert.equal(fingerprint('restored_plain'), original);
  assert.equal(fingerprint('restored_custom'), original);
});

test('SQLite: a database being written is dumped as it was at one moment, and restores whole', async (t) => {
  const { dir, repo } = repository(t);
  const file = path.join(dir, 'app.db');
  const db = new DatabaseSync(file);
  db.exec(`PRAGMA journal_mode=WAL; create table events (id integer primary key, body text not null);
    with recursive n(i) as (select 1 union all select i + 1 from n where i < 5000) insert into events (body) select printf('event %d', i) from n;`);
  db.close();
  // Another process keeps writing, one row per transaction.
  const writer = spawn(process.execPath, [
    '-e',
    `const { DatabaseSync } = require('node:sqlite'); const db = new DatabaseSync(${JSON.stringify(file)}); db.exec('PRAGMA busy_timeout=5000');
     const insert = db.prepare('insert into events (body) values (?)'); let n = 0;
     setInterval(() => { for (let i = 0; i < 20; i++) insert.run('written during the backup ' + n++); }, 2);`,
  ]);
  t.after(() => writer.kill());
  const config = path.join(dir, 'config.yaml');
  fs.writeFileSync(config, `plans:\n  app:\n    repos: [${repo}]\n    sources: [{ type: sqlite, path: ${file} }]\n  broken:\n    repos: [${repo}]\n    sources: [{ type: sqlite, path: ${config} }]\nretries: { max: 0 }\n`);
  await new Promise((resolve) => setTimeout(resolve, 300));
  ok(['backup', '--plan', 'app', '--config', config]);
  writer.kill();
  const dump = path.join(dir, 'restored.sql');
  fs.writeFileSync(dump, okBytes(['dump', '--repo', repo, 'latest', '/app.db.sql']));
  const restored = path.join(dir, 'restored.db');
  const load = spawnSync('sqlite3', [restored], { input: fs.readFileSync(dump), encoding: 'utf8' });
  assert.equal(load.status, 0, load.stderr);
  const check = new DatabaseSync(restored, { readOnly: true });
  assert.equal((check.prepare('PRAGMA integrity_check').get() as { integrity_check: string }).integrity_check, 'ok');
  const { count, max } = check.prepare('select count(*) as count, max(id) as max from events').get() as { count: number; max: number };
  check.close();
  assert.ok(count > 5000, `rows written during the backup are there (${count})`);
  assert.equal(count, max, 'one moment: no row missing before the last one');
  // A file that is not a database fails the run: the shell reports the error inside the dump and exits 0.
  const broken = coffer(['backup', '--plan', 'broken', '--config', config]);
  assert.equal(broken.code, 1);
  assert.match(broken.stderr, /^coffer: \/config\.yaml\.sql: sqlite3 could not dump the whole database \(the dump ends in an error\)/);
});

test('MariaDB: mysqldump of a database, restored into a fresh one, is the same', { skip: !mariadbAvailable() && 'no MariaDB server (apt-get install mariadb-server)' }, async (t) => {
  const maria = await startMariaDb();
  t.after(() => maria.stop());
  maria.sql(
    undefined,
    `create database shop; use shop;
     create table orders (id int auto_increment primary key, customer varchar(100) character set utf8mb4, total decimal(10,2), placed datetime, notes blob) engine=InnoDB;
     insert into orders (customer, total, placed, notes) select concat('kunde ', seq, ' ü'), seq * 3.5, '2026-01-01 10:00:00', unhex(md5(seq)) from seq_1_to_5000;
     create procedure top_orders() select * from orders order by total desc limit 3;`,
  );
  const { repo } = repository(t);
  const daemon = await DaemonProcess.start(t, {
    config: `plans:\n  shop:\n    repos: [${repo}]\n    sources: [{ type: mysql, database: shop, socket: ${maria.socket}, user: root }]\n`,
  });
  await daemon.run('shop');
  await daemon.waitFor(/\(plan shop\) completed/);
  await daemon.stop();
  // Bytes, not text: the dump holds the blobs as they are.
  const dump = okBytes(['dump', '--repo', repo, 'latest', '/shop.sql']);
  assert.match(dump.toString('latin1'), /CREATE TABLE `orders`/);
  maria.sql(undefined, 'create database restored;');
  maria.sql('restored', dump);
  const fingerprint = (db: string): string =>
    maria.sql(
      db,
      `set session group_concat_max_len = 100000000;
       select count(*), md5(group_concat(id, customer, total, placed, hex(notes) order by id separator '|')) from orders;
       select count(*) from information_schema.routines where routine_schema = '${db}' and routine_name = 'top_orders';`,
    );
  const original = fingerprint('shop');
  assert.match(original, /^5000\t[0-9a-f]{32}\n1\n$/);
  assert.equal(fingerprint('restored'), original);
});
