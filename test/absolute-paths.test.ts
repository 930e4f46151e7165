// Snapshots hold each source at its full path (as restic does): ls, restore, diff and dump take the path
// that was backed up, `restore --target /` puts files back where they were, and snapshots written by
// 0.1.0 (one node per source at the top) keep working, as parents of new backups too.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { SnapshotView } from '../src/engine/snapshot-view.ts';
import { decodeSnapshot } from '../src/format/snapshot.ts';
import { Repository } from '../src/repo/repository.ts';
import { openStore } from '../src/store/open-store.ts';
import { coffer, jsonLines, ok, PASSWORD, summaryOf, tempDir } from './helpers/cli.ts';
import { rewriteAsLegacy } from './helpers/legacy-snapshot.ts';
import { makeRichTree, seededBytes, treeDifferences } from './helpers/tree.ts';

interface Snap {
  id: string;
  parent?: string;
  paths: string[];
  layout?: string;
}

function snapshots(repo: string): Snap[] {
  return jsonLines<Snap>(ok(['snapshots', '--repo', repo, '--json']).stdout);
}

/** The tree id of `p` in snapshot `id`, read with the engine (what dedup is about). */
async function subtreeOf(repo: string, id: string, p: string): Promise<string> {
  const r = await Repository.open([openStore(repo)], PASSWORD);
  try {
    await r.loadIndex();
    const view = await SnapshotView.open(r, await r.loadSnapshot(`snapshots/${id}`));
    return (await view.find(p)).node!.subtree!.toString('hex');
  } finally {
    await r.close();
  }
}

function homeOf(dir: string): { docs: string; photos: string; otherDocs: string } {
  const docs = path.join(dir, 'home/ann/documents');
  const photos = path.join(dir, 'home/ann/photos');
  const otherDocs = path.join(dir, 'srv/documents');
  for (const d of [docs, photos, otherDocs]) fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(path.join(docs, 'cv.txt'), 'curriculum');
  fs.writeFileSync(path.join(photos, 'cat.jpg'), seededBytes('cat', 200_000));
  fs.writeFileSync(path.join(otherDocs, 'cv.txt'), 'another cv');
  return { docs, photos, otherDocs };
}

test('sources are stored at their full paths; ls lists one level or everything; SNAP:/path works for ls, dump, diff', (t) => {
  const dir = tempDir(t);
  const { docs, photos } = homeOf(dir);
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  ok(['backup', '--repo', repo, docs, photos]);
  const [snap] = snapshots(repo);
  assert.equal(snap!.layout, 'absolute');

  const everything = ok(['ls', '--repo', repo, 'latest']).stdout.trim().split('\n');
  assert.ok(everything.includes(`${docs}/cv.txt`) && everything.includes(`${photos}/cat.jpg`), everything.join('\n'));
  assert.ok(everything.includes('/') === false && everything[0] === '/' + dir.split('/')[1]);
  assert.deepEqual(ok(['ls', '--repo', repo, 'latest', path.join(dir, 'home/ann')]).stdout.trim().split('\n'), [docs, photos], 'one level');
  assert.deepEqual(ok(['ls', '--repo', repo, `latest:${path.join(dir, 'home/ann')}`]).stdout.trim().split('\n'), [docs, photos], 'SNAP:/path');
  assert.deepEqual(ok(['ls', '--repo', repo, 'latest', path.join(dir, 'home'), '--recursive']).stdout.trim().split('\n'), [
    path.join(dir, 'home/ann'),
    docs,
    `${docs}/cv.txt`,
    photos,
    `${photos}/cat.jpg`,
  ]);
  const [node] = jsonLines(ok(['ls', '--repo', repo, 'latest', `${docs}/cv.txt`, '--json']).stdout);
  assert.deepEqual([node!.type, node!.nodeType, node!.path, node!.size], ['node', 'file', `${docs}/cv.txt`, 10]);
  assert.equal(ok(['dump', '--repo', repo, `latest:${docs}/cv.txt`]).stdout, 'curriculum');

  fs.writeFileSync(path.join(docs, 'letter.txt'), 'new');
  ok(['backup', '--repo', repo, docs, photos]);
  const [first, second] = snapshots(repo);
  const diff = ok(['diff', '--repo', repo, `${first!.id}:${docs}`, `${second!.id}:${docs}`]).stdout;
  assert.deepEqual(diff.split('\n').filter((l) => /^[-+MTU] /.test(l)), [`+    ${docs}/letter.txt`]);

  const twice = coffer(['ls', '--repo', repo, `latest:${docs}`, docs]);
  assert.equal(twice.code, 1);
  assert.match(twice.stderr, /^coffer: give the path once/);
  const missing = coffer(['ls', '--repo', repo, 'latest', '/documents']);
  assert.match(missing.stderr, new RegExp(`^coffer: path /documents is not in the snapshot \\(it holds ${docs}, ${photos}\\)`));
  assert.match(coffer(['diff', '--repo', repo, `latest:${docs}/cv.txt`, 'latest']).stderr, /is not a directory; diff compares directories/);
});

test('restore --target / puts files back where they were, with their metadata', (t) => {
  const dir = tempDir(t);
  const source = makeRichTree(path.join(dir, 'data/source'));
  const copy = path.join(dir, 'copy');
  fs.cpSync(source, copy, { recursive: true, verbatimSymlinks: true });
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  ok(['backup', '--repo', repo, source]);
  // What the backup holds is compared against the original later: keep one before deleting it.
  const original = path.join(dir, 'original');
  ok(['restore', '--repo', repo, `latest:${source}`, '--target', original]);
  fs.rmSync(source, { recursive: true });
  ok(['restore', '--repo', repo, 'latest', '--target', '/']);
  assert.deepEqual(treeDifferences(original, source), []);
});

test('a 0.1.0 snapshot: read in the full-path layout, used as the parent (nothing read again, same tree ids), diffed against a new one', async (t) => {
  const dir = tempDir(t);
  const { docs, photos, otherDocs } = homeOf(dir);
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  const sources = [docs, photos, otherDocs];
  ok(['backup', '--repo', repo, ...sources]);
  const legacyId = await rewriteAsLegacy(repo, PASSWORD, snapshots(repo)[0]!.id);
  assert.equal(snapshots(repo)[0]!.layout, undefined);

  // Two sources named "documents": 0.1.0 called them documents and documents-1; both come back at their paths.
  const ls = ok(['ls', '--repo', repo, 'latest']).stdout.trim().split('\n');
  for (const p of [`${docs}/cv.txt`, `${photos}/cat.jpg`, `${otherDocs}/cv.txt`]) assert.ok(ls.includes(p), `${p} in\n${ls.join('\n')}`);
  assert.equal(ok(['dump', '--repo', repo, 'latest', '/documents-1/cv.txt']).stdout, 'another cv', 'the old spelling');
  assert.equal(ok(['dump', '--repo', repo, 'latest', `${otherDocs}/cv.txt`]).stdout, 'another cv');

  // Restoring to / creates nothing new and leaves the directories above the sources as they are.
  const ann = path.join(dir, 'home/ann');
  fs.chmodSync(ann, 0o711);
  fs.utimesSync(ann, 1_000_000, 1_000_000);
  fs.rmSync(path.join(docs, 'cv.txt'));
  ok(['restore', '--repo', repo, 'latest', '--target', '/', '--include', `${docs}/cv.txt`]);
  assert.equal(fs.readFileSync(path.join(docs, 'cv.txt'), 'utf8'), 'curriculum');
  assert.equal(fs.statSync(ann).mode & 0o7777, 0o711);
  assert.equal(fs.statSync(ann).mtimeMs, 1_000_000_000);

  fs.writeFileSync(path.join(docs, 'cv.txt'), 'curriculum');
  const next = summaryOf(ok(['backup', '--repo', repo, '--json', ...sources]).stdout);
  const [, latest] = snapshots(repo);
  assert.equal(latest!.parent, legacyId, 'the 0.1.0 snapshot is the parent');
  assert.equal(latest!.layout, 'absolute');
  assert.deepEqual([next.filesUnmodified, next.filesChanged, next.filesNew], [2, 1, 0], 'unchanged files are not read again');
  for (const p of [photos, otherDocs]) assert.equal(await subtreeOf(repo, latest!.id, p), await subtreeOf(repo, legacyId, p), `${p}: same tree id`);

  const diff = ok(['diff', '--repo', repo, legacyId, latest!.id]).stdout;
  assert.deepEqual(diff.split('\n').filter((l) => /^[-+MTU] /.test(l)), [`U    ${docs}`, `U    ${docs}/cv.txt`], 'no made-up changes above the sources');
});

test('the snapshot layout field: absent (0.1.0) or "absolute"; another value is refused with advice to upgrade', () => {
  const summary = { filesNew: 0, filesChanged: 0, filesUnmodified: 0, dirs: 0, totalFiles: 0, totalBytes: 0, dataBlobs: 0, treeBlobs: 0, bytesAdded: 0, warnings: 0, durationMs: 0 };
  const base = { version: 1, time: '2026-11-23T16:45:30.102Z', host: 'h', user: 'u', paths: ['/a'], tags: [], tree: 'ab'.repeat(32), program: 'coffer', summary };
  const decode = (value: unknown) => decodeSnapshot(Buffer.from(JSON.stringify(value)), 'snapshots/x');
  assert.equal(decode(base).layout, undefined);
  assert.equal(decode({ ...base, layout: 'absolute' }).layout, 'absolute');
  assert.throws(() => decode({ ...base, layout: 'sharded' }), /snapshots\/x has a root layout \("sharded"\) this version does not know; upgrade Coffer/);
});
