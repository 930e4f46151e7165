// `coffer forget` through the CLI: policies per group with the reason each snapshot is kept, dry runs,
// ids, plans, JSON, and replicas on a local disk, S3 (s3rver) and SFTP (sshd), one of them unreachable.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { coffer, CONFIG_FILE, jsonLines, ok, PASSWORD, summaryOf, tempDir } from './helpers/cli.ts';
import { startRemotes, type Remotes } from './helpers/remotes.ts';
import { stampSnapshots } from './helpers/snapshots.ts';
import { Repository, type StoredSnapshot } from '../src/repo/repository.ts';
import { LocalStore } from '../src/store/local.ts';
import type { Store } from '../src/store/store.ts';

let remotes: Remotes;
before(async () => {
  remotes = await startRemotes();
});
after(() => remotes?.stop());

/** A repository on `locations` with one real backup of a small source; returns that snapshot and the source. */
async function repoWithOneBackup(dir: string, locations: string[], env: Record<string, string> = {}): Promise<{ template: StoredSnapshot; source: string; stores: Store[] }> {
  const source = path.join(dir, 'source');
  fs.mkdirSync(source, { recursive: true });
  fs.writeFileSync(path.join(source, 'a.txt'), 'forget me not\n');
  const repos = locations.flatMap((l) => ['--repo', l]);
  ok(['init', ...repos], { env });
  ok(['backup', ...repos, source], { env });
  const stores = locations.map((l) => remotes.open(l));
  const repo = await Repository.open(stores, PASSWORD);
  const [template] = await repo.listSnapshots();
  return { template: template!, source, stores };
}

function snapshotIds(repos: string[], env: Record<string, string> = {}): string[] {
  return (jsonLines(ok(['snapshots', ...repos.flatMap((r) => ['--repo', r]), '--json'], { env }).stdout).filter((l) => l.type === 'snapshot') as { id: string }[]).map((s) => s.id);
}

test('forget applies a policy per host and paths, shows the rule that kept each snapshot, and --dry-run changes nothing', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const repo = path.join(dir, 'repo');
  const { template, source, stores } = await repoWithOneBackup(dir, [repo]);
  const days = ['2026-01-01T10:00:00Z', '2026-01-01T18:00:00Z', '2026-01-02T10:00:00Z', '2026-01-03T10:00:00Z', '2026-01-05T10:00:00Z'];
  const mine = await stampSnapshots(stores, PASSWORD, template, days.map((time) => ({ time, tags: time.endsWith('18:00:00Z') ? ['keep'] : [] })));
  const other = await stampSnapshots(stores, PASSWORD, template, [{ time: '2025-06-01T00:00:00Z', host: 'other' }]);
  const before = snapshotIds([repo]);
  assert.equal(before.length, 7);

  const dry = coffer(['forget', '--repo', repo, '--keep-daily', '2', '--keep-tag', 'keep', '--dry-run', '--json'], { env: { TZ: 'UTC' } });
  assert.equal(dry.code, 0, dry.stderr);
  const groups = jsonLines(dry.stdout).filter((l) => l.type === 'group') as { host: string; paths: string[]; keep: { id: string; reasons: string[] }[]; remove: { id: string }[] }[];
  assert.deepEqual(groups.map((g) => g.host).sort(), ['other', 'vm'].includes(template.snapshot.host) ? groups.map((g) => g.host).sort() : []);
  const vm = groups.find((g) => g.host === template.snapshot.host)!;
  assert.deepEqual(vm.paths, [source]);
  const reasons = new Map(vm.keep.map((k) => [k.id, k.reasons]));
  // The real backup (now) and 5 January are the two newest days; the tagged one is kept for its tag.
  assert.deepEqual(reasons.get(template.id), ['daily snapshot']);
  assert.deepEqual(reasons.get(mine[4]!.id), ['daily snapshot']);
  assert.deepEqual(reasons.get(mine[1]!.id), ['has tag keep']);
  assert.deepEqual(vm.remove.map((r) => r.id).sort(), [mine[0]!.id, mine[2]!.id, mine[3]!.id].sort());
  assert.deepEqual(groups.find((g) => g.host === 'other')!.keep.map((k) => k.id), [other[0]!.id]);
  assert.deepEqual(summaryOf(dry.stdout), { type: 'summary', dryRun: true, kept: 4, removed: 3, replicas: [] });
  assert.deepEqual(snapshotIds([repo]).sort(), before.sort(), 'a dry run removes nothing');
  assert.equal(fs.existsSync(path.join(repo, 'deletions')) && fs.readdirSync(path.join(repo, 'deletions')).length, false);

  // For real, on one host only: the other host's snapshot is not even considered.
  const real = ok(['forget', '--repo', repo, '--keep-daily', '2', '--keep-tag', 'keep', '--host', template.snapshot.host], { env: { TZ: 'UTC' } });
  assert.match(real.stdout, /keep 3 snapshots:[\s\S]*daily snapshot[\s\S]*has tag keep[\s\S]*remove 3 snapshots:/);
  assert.match(real.stdout, /removed 3 snapshots; coffer prune frees/);
  assert.deepEqual(snapshotIds([repo]).sort(), [template.id, mine[1]!.id, mine[4]!.id, other[0]!.id].sort());
  assert.equal(fs.readdirSync(path.join(repo, 'deletions')).length, 1, 'one deletion record names the forgotten snapshots');
  assert.match(ok(['check', '--repo', repo]).stdout, /no errors were found/);
  const out = path.join(dir, 'restored');
  ok(['restore', '--repo', repo, mine[4]!.id.slice(0, 10), '--target', out]);
  assert.equal(fs.readFileSync(path.join(out, source, 'a.txt'), 'utf8'), 'forget me not\n');
  // Nothing left to remove: the same policy again is a no-op.
  assert.match(ok(['forget', '--repo', repo, '--keep-daily', '2', '--keep-tag', 'keep', '--host', template.snapshot.host], { env: { TZ: 'UTC' } }).stdout, /nothing to remove/);
});

test('forget by id or prefix; unknown, ambiguous and badly formed arguments change nothing', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const repo = path.join(dir, 'repo');
  const { template, stores } = await repoWithOneBackup(dir, [repo]);
  const [a, b] = await stampSnapshots(stores, PASSWORD, template, [{ time: '2026-02-01T00:00:00Z' }, { time: '2026-02-02T00:00:00Z' }]);
  for (const [args, message] of [
    [['forget', 'ffffffffffff'], /no snapshot ffffffffffff/],
    [['forget', 'zz'], /not a snapshot id/],
    [['forget', ''], /not a snapshot id|no snapshot/],
    [['forget'], /no policy given/],
    [['forget', a!.id, '--keep-last', '1'], /not both/],
    [['forget', '--keep-last', '-5'], /--keep-last takes a number/],
    [['forget', '--keep-within', '10x'], /--keep-within: "10x" is not a duration/],
    [['forget', '--keep-last', '1', '--group-by', 'hots'], /--group-by takes host, paths and tags/],
    [['forget', '--keep-lats', '1'], /unknown option '--keep-lats'/],
  ] as const) {
    const r = coffer([...args, '--repo', repo]);
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.match(r.stderr, /^coffer: /);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
  assert.equal(snapshotIds([repo]).length, 3, 'nothing was removed by the refused commands');
  const r = ok(['forget', '--repo', repo, a!.id.slice(0, 12), b!.id, a!.id]);
  assert.match(r.stdout, /removed 2 snapshots/);
  assert.deepEqual(snapshotIds([repo]), [template.id]);
});

test('forgetting a snapshot written by an interrupted tag forgets the versions it replaces, which would reappear otherwise', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const repo = path.join(dir, 'repo');
  const { template, stores } = await repoWithOneBackup(dir, [repo]);
  // Two tag runs, each interrupted before deleting the old version: template <- v2 <- v3 on disk.
  const [v2] = await stampSnapshots(stores, PASSWORD, template, [{ time: template.snapshot.time, tags: ['a'], replaces: template.id }]);
  const [v3] = await stampSnapshots(stores, PASSWORD, template, [{ time: template.snapshot.time, tags: ['b'], replaces: v2!.id }]);
  assert.deepEqual(snapshotIds([repo]), [v3!.id], 'the older versions are hidden');
  ok(['forget', '--repo', repo, v3!.id]);
  assert.deepEqual(snapshotIds([repo]), [], 'no older version comes back');
  assert.deepEqual(fs.readdirSync(path.join(repo, 'snapshots')), []);
});

test("forget --plan applies the plan's retention to the plan's own snapshots", { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const repo = path.join(dir, 'repo');
  const { template, source, stores } = await repoWithOneBackup(dir, [repo]);
  const mine = await stampSnapshots(stores, PASSWORD, template, [{ time: '2026-03-01T00:00:00Z' }, { time: '2026-03-02T00:00:00Z' }]);
  const elsewhere = await stampSnapshots(stores, PASSWORD, template, [{ time: '2026-03-03T00:00:00Z', paths: ['/elsewhere'] }]);
  const config = path.join(dir, 'config.yaml');
  fs.writeFileSync(config, `plans:\n  home:\n    repos: [${repo}]\n    paths: [${source}]\n    host: ${template.snapshot.host}\n    retention: { keepLast: 2 }\n  bare:\n    repos: [${repo}]\n    paths: [${source}]\n`);
  const bare = coffer(['forget', '--plan', 'bare', '--config', config]);
  assert.equal(bare.code, 1);
  assert.match(bare.stderr, /plan bare has no retention policy; add one/);
  assert.match(coffer(['forget', '--plan', 'nope', '--config', config]).stderr, /no plan "nope" .*plans: home, bare/);
  fs.writeFileSync(path.join(dir, 'bad.yaml'), `plans:\n  home:\n    repos: [${repo}]\n    paths: [${source}]\n    retention: { keepLast: two }\n`);
  assert.match(coffer(['forget', '--plan', 'home', '--config', path.join(dir, 'bad.yaml')]).stderr, /retention\.keepLast/);
  const r = ok(['forget', '--plan', 'home', '--config', config, '--json']);
  assert.equal(summaryOf(r.stdout).removed, 1);
  assert.deepEqual(snapshotIds([repo]).sort(), [template.id, mine[1]!.id, elsewhere[0]!.id].sort().filter((id) => id !== mine[0]!.id).sort());
  assert.ok(!snapshotIds([repo]).includes(mine[0]!.id));
  void CONFIG_FILE;
});

test("forget --plan takes exactly the plan's own snapshots: not another plan's backing up a superset on the same host, and its stream sources count", { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const repo = path.join(dir, 'repo');
  const { template, source, stores } = await repoWithOneBackup(dir, [repo]);
  const other = path.join(dir, 'other');
  const mine = await stampSnapshots(stores, PASSWORD, template, [{ time: '2026-03-01T00:00:00Z' }, { time: '2026-03-02T00:00:00Z' }]);
  const superset = await stampSnapshots(stores, PASSWORD, template, [
    { time: '2026-03-01T00:00:00Z', paths: [source, other].sort() },
    { time: '2026-03-02T00:00:00Z', paths: [source, other].sort() },
  ]);
  const dumps = await stampSnapshots(stores, PASSWORD, template, [
    { time: '2026-03-01T00:00:00Z', paths: [source, '/notes.txt'].sort() },
    { time: '2026-03-02T00:00:00Z', paths: [source, '/notes.txt'].sort() },
  ]);
  const config = path.join(dir, 'config.yaml');
  const host = template.snapshot.host;
  fs.writeFileSync(
    config,
    `plans:\n  home:\n    repos: [${repo}]\n    paths: [${source}]\n    host: ${host}\n    retention: { keepLast: 1 }\n` +
      `  both:\n    repos: [${repo}]\n    paths: [${source}, ${other}]\n    host: ${host}\n` +
      `  notes:\n    repos: [${repo}]\n    paths: [${source}]\n    host: ${host}\n    sources: [{ type: command, command: 'echo hi', filename: notes.txt }]\n    retention: { keepLast: 1 }\n`,
  );
  const remainingAfter = (plan: string): string[] => {
    ok(['forget', '--plan', plan, '--config', config]);
    return snapshotIds([repo]).sort();
  };
  // home keeps its newest (the real backup) and removes its two older ones; both's and notes' stay.
  assert.deepEqual(remainingAfter('home'), [template.id, ...superset.map((s) => s.id), ...dumps.map((s) => s.id)].sort());
  assert.ok(mine.every((s) => !snapshotIds([repo]).includes(s.id)));
  // notes' snapshots are its paths and /notes.txt: its policy finds them, and only them.
  assert.deepEqual(remainingAfter('notes'), [template.id, ...superset.map((s) => s.id), dumps[1]!.id].sort());
});

test('forget removes the snapshot on every replica (local, S3, SFTP); an unreachable one is reported and never gets it back', { timeout: 90_000 }, async (t) => {
  const dir = tempDir(t);
  const locations = [remotes.location('local', dir), remotes.location('s3', dir), remotes.location('sftp', dir)];
  const late = path.join(dir, 'late');
  const env = remotes.env;
  const { template, stores } = await repoWithOneBackup(dir, [...locations, late], env);
  const [old1, old2] = await stampSnapshots([...stores, new LocalStore(late)], PASSWORD, template, [{ time: '2025-01-01T00:00:00Z' }, { time: '2025-01-02T00:00:00Z' }]);
  const repos = locations.flatMap((l) => ['--repo', l]);

  // The late replica is away (unmounted) while a snapshot is forgotten.
  fs.renameSync(late, `${late}.away`);
  const r = coffer(['forget', ...repos, '--repo', late, old1!.id], { env });
  assert.equal(r.code, 4, r.stderr);
  assert.match(r.stderr, new RegExp(`${late}: not changed: unreachable`));
  for (const store of stores.slice(0, 3)) assert.equal(await store.stat(`snapshots/${old1!.id}`), undefined, `${store.location} still has the snapshot`);
  fs.renameSync(`${late}.away`, late);
  assert.ok(fs.existsSync(path.join(late, 'snapshots', old1!.id)), 'the late replica was not reachable');

  // Back again: nobody lists the forgotten snapshot, and a backup to all four does not copy it back.
  const all = [...repos, '--repo', late];
  assert.ok(!snapshotIds([...locations, late], env).includes(old1!.id));
  ok(['backup', ...all, path.join(dir, 'source')], { env });
  for (const store of stores.slice(0, 3)) assert.equal(await store.stat(`snapshots/${old1!.id}`), undefined, `the backup copied the forgotten snapshot back to ${store.location}`);
  assert.ok(await new LocalStore(late).stat('deletions/' + fs.readdirSync(path.join(locations[0]!, 'deletions'))[0]), 'the record reached the late replica');

  // All reachable: removed everywhere at once, JSON says where.
  const json = summaryOf(ok(['forget', ...all, old2!.id, '--json'], { env }).stdout);
  assert.deepEqual((json.replicas as { removed: number }[]).map((x) => x.removed), [1, 1, 1, 1]);
  for (const store of stores) assert.equal(await store.stat(`snapshots/${old2!.id}`), undefined);
  for (const store of stores) await store.close();
});

test('forget without a policy, or with ids and a policy, is refused before the repository is opened (no passphrase asked for)', (t) => {
  const missing = path.join(tempDir(t), 'no-repo-here');
  const none = coffer(['forget', '--repo', missing]);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /^coffer: no policy given: add --keep-last/);
  assert.match(coffer(['forget', '--repo', missing, 'abc', '--keep-last', '2']).stderr, /^coffer: give snapshot ids or a policy \(--keep-…\), not both/);
  assert.match(coffer(['forget', '--repo', missing, '--keep-last', '2']).stderr, /not a Coffer repository/);
  // forget --prune with a wrong prune limit forgets nothing.
  assert.match(coffer(['forget', '--repo', missing, '--keep-last', '2', '--prune', '--max-unused', '5']).stderr, /^coffer: --max-unused 5: give its unit/);
  assert.match(coffer(['forget', '--repo', missing, '--keep-last', '2', '--prune', '--max-repack-size', 'lots']).stderr, /^coffer: --max-repack-size takes a size/);
});
