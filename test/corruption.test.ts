// Corruption injection: bytes flipped in, tails cut off and whole objects deleted from packs, index
// files, snapshots, key files, the config, deletion records and writer markers. Check names each damaged
// object, and nothing crashes or hangs. Local in-process for the whole matrix; the CLI and S3 for some.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { forgetSnapshots } from '../src/engine/forget.ts';
import { runCheck } from '../src/engine/check.ts';
import { Repository, initRepository } from '../src/repo/repository.ts';
import { WriterSession } from '../src/repo/writer-markers.ts';
import { LocalStore } from '../src/store/local.ts';
import { coffer, PASSWORD, tempDir } from './helpers/cli.ts';
import { startRemotes, type Remotes } from './helpers/remotes.ts';
import { seededBytes } from './helpers/tree.ts';

type Damage = 'flip' | 'truncate' | 'delete';

/** Damage the file of an object in a local repository (made writable first). */
function damage(file: string, how: Damage, at?: number): void {
  fs.chmodSync(file, 0o600);
  if (how === 'delete') return fs.rmSync(file);
  const bytes = fs.readFileSync(file);
  if (how === 'truncate') return fs.writeFileSync(file, bytes.subarray(0, Math.floor(bytes.length / 2)));
  bytes[at ?? Math.floor(bytes.length / 2)]! ^= 0x40;
  fs.writeFileSync(file, bytes);
}

/**
 * Where to flip the config: in its id. The config is plain JSON without a MAC (yet), so a flip in, say,
 * its creation time cannot be seen by any reader.
 */
function configIdByte(file: string): number {
  return fs.readFileSync(file, 'utf8').indexOf('"id"') + 8;
}

function objects(repo: string, dir: string): string[] {
  const root = path.join(repo, dir);
  return fs.readdirSync(root, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => path.relative(repo, path.join(e.parentPath, e.name)));
}

/** Resolves with the promise, or rejects if it takes longer than `ms` (a hang is a failure). */
function within<T>(ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([promise, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}

let template: string;
let scratch: string;
let remotes: Remotes;

before(async () => {
  remotes = await startRemotes();
  scratch = fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', 'coffer-corruption-'));
  template = path.join(scratch, 'template');
  const stores = [new LocalStore(template)];
  await initRepository(stores, PASSWORD);
  const source = path.join(scratch, 'source');
  fs.mkdirSync(source);
  fs.writeFileSync(path.join(source, 'a'), seededBytes('a', 300_000));
  fs.writeFileSync(path.join(source, 'b'), 'b'.repeat(10_000));
  await backupWith(stores, [source]);
  fs.writeFileSync(path.join(source, 'c'), seededBytes('c', 100_000));
  await backupWith(stores, [source]);
  const third = await backupWith(stores, [path.join(source, 'c')]);
  const repo = await Repository.open(stores, PASSWORD);
  await forgetSnapshots(repo, { ids: [third], groupBy: [] });
  // A writer marker left behind, as a killed process leaves it: copied aside before its process ends.
  const session = await WriterSession.start(repo, { command: 'backup' });
  const marker = objects(template, 'writers')[0]!;
  const kept = fs.readFileSync(path.join(template, marker));
  await session.end();
  fs.writeFileSync(path.join(template, marker), kept);
});

after(async () => {
  fs.rmSync(scratch, { recursive: true, force: true });
  await remotes?.stop();
});

/** backup() of helpers/lifecycle uses its own passphrase; the template uses the CLI's. */
async function backupWith(stores: LocalStore[], paths: string[]): Promise<string> {
  const { BackupRun } = await import('../src/engine/backup/backup.ts');
  const repo = await Repository.open(stores, PASSWORD);
  return (await new BackupRun(repo, { paths, workers: 1 }).run()).snapshotId;
}

const MATRIX: [string, Damage[]][] = [
  ['data', ['flip', 'truncate', 'delete']],
  ['index', ['flip', 'truncate', 'delete']],
  ['snapshots', ['flip', 'truncate']],
  ['keys', ['flip', 'truncate', 'delete']],
  ['config', ['flip', 'truncate', 'delete']],
  ['deletions', ['flip', 'truncate']],
  ['writers', ['flip', 'truncate']],
];

test('every kind of object, flipped, truncated or deleted: check names it, and nothing crashes or hangs', { timeout: 180_000 }, async () => {
  let cases = 0;
  for (const [dir, damages] of MATRIX) {
    for (const how of damages) {
      const copy = path.join(scratch, `case-${dir}-${how}`);
      fs.cpSync(template, copy, { recursive: true });
      const victims = dir === 'config' ? ['config'] : objects(copy, dir);
      assert.ok(victims.length > 0, `the template has ${dir}`);
      // The biggest index file lists the first backup's data, which the kept snapshots need: deleting
      // a file that lists only the forgotten snapshot's trees would rightly go unnoticed.
      const victim = dir === 'index' ? victims.toSorted((a, b) => fs.statSync(path.join(copy, b)).size - fs.statSync(path.join(copy, a)).size)[0]! : victims[0]!;
      damage(path.join(copy, victim), how, dir === 'config' ? configIdByte(path.join(copy, victim)) : undefined);
      const what = `${how} ${victim}`;
      // A deleted index file cannot be named (nothing is left of it): what it listed is reported instead.
      const named = (text: string): boolean =>
        text.includes(dir === 'config' ? 'config' : path.basename(victim).slice(0, 8)) || (dir === 'keys' && /key/.test(text)) || (dir === 'index' && how === 'delete' && /is not in the index/.test(text));
      let text: string;
      try {
        const repo = await within(30_000, Repository.open([new LocalStore(copy)], PASSWORD));
        const result = await within(60_000, runCheck(repo, { readData: { kind: dir === 'data' ? 'all' : 'none' } }));
        assert.ok(result.errors.length > 0, `${what}: check found nothing`);
        text = result.errors.join('\n');
      } catch (err) {
        // Opening fails for a damaged config or the only key: with a message for the user, never a crash.
        const e = err as Error;
        assert.ok(['RepositoryError', 'NoRepositoryError', 'WrongPassphraseError', 'FormatError', 'StoreError', 'AuthenticationError', 'UnsupportedVersionError'].includes(e.name), `${what}: ${e.name}: ${e.message}`);
        text = e.message;
      }
      assert.ok(named(text), `${what}: the message does not name it: ${text}`);
      fs.rmSync(copy, { recursive: true, force: true });
      cases++;
    }
  }
  assert.equal(cases, 18);
});

test('through the CLI and on S3: one line per damaged object, exit code 1, no stack trace', { timeout: 180_000 }, async (t) => {
  const dir = tempDir(t);
  const pack = objects(template, 'data').find((n) => fs.statSync(path.join(template, n)).size > 100_000)!;
  const index = objects(template, 'index')[0]!;
  // One damage per copy: a truncated index file may list the flipped pack, which would hide it.
  for (const [victim, how, expected] of [
    [pack, 'flip', new RegExp(`error: .*${path.basename(pack).slice(0, 16)}`)],
    [index, 'truncate', new RegExp(`error: index file ${index}`)],
  ] as const) {
    const copy = path.join(dir, `repo-${how}`);
    fs.cpSync(template, copy, { recursive: true });
    damage(path.join(copy, victim), how);
    const r = coffer(['check', '--repo', copy, '--read-data']);
    assert.equal(r.code, 1);
    assert.match(r.stdout, expected);
    assert.doesNotMatch(r.stdout + r.stderr, /\n\s+at |unexpected error/);

    // The same damage behind s3rver: its object files are changed behind its back.
    const bucket = remotes.location('s3', dir);
    assert.equal(coffer(['sync', '--from', template, '--to', bucket], { env: remotes.env }).code, 0);
    const prefix = bucket.slice(bucket.lastIndexOf('/') + 1);
    damage(path.join(remotes.s3.directory, remotes.s3.bucket, prefix, `${victim}._S3rver_object`), how);
    const s3 = coffer(['check', '--repo', bucket, '--read-data'], { env: remotes.env });
    assert.equal(s3.code, 1, s3.stderr);
    assert.match(s3.stdout, expected);
    assert.doesNotMatch(s3.stdout + s3.stderr, /\n\s+at |unexpected error/);
  }
});
