// `coffer prune` as a user runs it: --dry-run changes nothing on the store (every object, byte for byte
// and with its time, is as it was) while saying what a real run then does; progress shows each stage on
// a terminal and as `status` lines in --json (docs/JSON.md).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { coffer, jsonLines, ok, summaryOf, tempDir } from './helpers/cli.ts';
import { onTerminal } from './helpers/terminal.ts';
import { seededBytes } from './helpers/tree.ts';

/** Every file of the repository with its size, time and a digest of its bytes. */
function listing(root: string): string[] {
  return fs
    .readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => {
      const file = path.join(e.parentPath, e.name);
      const stat = fs.statSync(file);
      return `${path.relative(root, file)} ${stat.size} ${stat.mtimeMs} ${fs.readFileSync(file).toString('base64').slice(-24)}`;
    })
    .sort();
}

/** Files of the first backup that the second no longer has: an irregular half, so that whichever chunk
 * worker's pack a file went to, each pack holds files of both kinds. */
const REMOVED = new Set([1, 2, 5, 8, 11, 12, 15, 17, 18, 21, 22, 23]);

/**
 * Two backups sharing half of their files, the first forgotten: its tree pack is wholly unused (deleted)
 * and its data packs partly unused (repacked, with --max-unused 0%).
 */
function repoToPrune(dir: string): string {
  const repo = path.join(dir, 'repo');
  const source = path.join(dir, 'source');
  fs.mkdirSync(source);
  for (let i = 0; i < 24; i++) fs.writeFileSync(path.join(source, `f${i}`), seededBytes(`f${i}`, 40_000));
  ok(['init', '--repo', repo]);
  ok(['backup', '--repo', repo, source]);
  for (const i of REMOVED) fs.rmSync(path.join(source, `f${i}`));
  ok(['backup', '--repo', repo, source]);
  ok(['forget', '--repo', repo, '--keep-last', '1']);
  return repo;
}

test('prune --dry-run changes nothing on the store and says what the real run then does', { timeout: 60_000 }, (t) => {
  const repo = repoToPrune(tempDir(t));
  const before = listing(repo);

  const text = ok(['prune', '--repo', repo, '--max-unused', '0%', '--dry-run']).stdout;
  assert.match(text, /^would repack \d packs \(.+\), keeping \d+ blobs$/m);
  assert.match(text, /^would delete \d+ packs \(.+\): frees about .+$/m);
  assert.match(text, /^dry run: nothing was changed$/m);
  // A bare number is refused (5 bytes would repack nearly everything), except 0.
  const bare = coffer(['prune', '--repo', repo, '--max-unused', '5']);
  assert.equal(bare.code, 1);
  assert.equal(bare.stderr, 'coffer: --max-unused 5: give its unit, 5% for a percentage of the used data or 5B for bytes\n');
  assert.match(ok(['prune', '--repo', repo, '--max-unused', '0', '--dry-run']).stdout, /dry run: nothing was changed/);
  const dry = summaryOf(ok(['prune', '--repo', repo, '--max-unused', '0%', '--dry-run', '--json']).stdout) as { dryRun: boolean; deleted: { packs: number }; repacked: { packs: number; blobs: number } };
  assert.equal(dry.dryRun, true);
  assert.ok(dry.deleted.packs >= 2 && dry.repacked.packs >= 1 && dry.repacked.blobs > 0, JSON.stringify(dry));
  assert.deepEqual(listing(repo), before, 'no object was written, changed or deleted (no marker, no record, no index file)');

  const real = summaryOf(ok(['prune', '--repo', repo, '--max-unused', '0%', '--json']).stdout) as typeof dry;
  assert.equal(real.dryRun, false);
  assert.equal(real.deleted.packs, dry.deleted.packs);
  assert.deepEqual(real.repacked.packs, dry.repacked.packs);
  assert.equal(real.repacked.blobs, dry.repacked.blobs);
  assert.notDeepEqual(listing(repo), before);
  assert.match(ok(['check', '--repo', repo]).stdout, /no errors were found/);
});

test('prune shows each stage as it starts: on a terminal in place, in --json as status lines', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const repo = repoToPrune(dir);
  fs.cpSync(repo, path.join(dir, 'copy'), { recursive: true });

  const lines = jsonLines(ok(['prune', '--repo', repo, '--max-unused', '0%', '--json']).stdout);
  const statuses = lines.filter((l) => l.type === 'status');
  for (const s of statuses) for (const field of ['stage', 'done', 'total', 'bytesDone', 'bytesTotal', 'elapsedMs']) assert.ok(field in s, `${field} in ${JSON.stringify(s)}`);
  const stages = [...new Set(statuses.map((s) => s.stage))];
  assert.deepEqual(stages, ['reconciling replicas', 'loading index', 'finding used data', 'repacking', 'writing index', 'deleting', 'cleaning up']);
  assert.equal(lines.at(-1)!.type, 'summary');
  const repacking = statuses.find((s) => s.stage === 'repacking')!;
  assert.ok((repacking.total as number) >= 1);
  assert.ok((repacking.bytesTotal as number) > 0);

  const shown = await onTerminal(['prune', '--repo', path.join(dir, 'copy'), '--max-unused', '0%'], []);
  assert.equal(shown.code, 0, shown.output);
  for (const stage of ['loading index', 'finding used data', 'repacking 0/\\d', 'writing index', 'cleaning up']) assert.match(shown.output, new RegExp(`\\x1b\\[K\\[[^\\]]+\\] ${stage}`), `${stage} in ${JSON.stringify(shown.output)}`);
  // The status line is erased before the report, which ends the output.
  assert.match(shown.output, /\r\x1b\[Krepository: \d+ packs/);
  assert.match(shown.output, /unused space left: .+\r?\n$/);
});
