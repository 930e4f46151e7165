// Retention policies (engine/retention.ts) and grouping (engine/snapshot-filter.ts): restic's rules,
// checked on hand-made snapshot histories.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyRetention, isEmptyPolicy, parseDuration, PolicyError, type RetentionPolicy } from '../src/engine/retention.ts';
import { groupSnapshots, parseGroupBy, GroupByError } from '../src/engine/snapshot-filter.ts';
import { planForget } from '../src/engine/forget.ts';
import type { StoredSnapshot } from '../src/repo/repository.ts';

process.env.TZ = 'UTC';

let counter = 0;
function snap(time: string, extra: { host?: string; paths?: string[]; tags?: string[] } = {}): StoredSnapshot {
  const id = (++counter).toString(16).padStart(64, '0');
  return {
    id,
    snapshot: {
      version: 1,
      time: new Date(time).toISOString(),
      host: extra.host ?? 'vm',
      user: 'root',
      paths: extra.paths ?? ['/data'],
      tags: extra.tags ?? [],
      tree: '0'.repeat(64),
      program: 'test',
      summary: { filesNew: 0, filesChanged: 0, filesUnmodified: 0, dirs: 0, totalFiles: 0, totalBytes: 0, dataBlobs: 0, treeBlobs: 0, bytesAdded: 0, warnings: 0, durationMs: 0 },
    },
  };
}

/** The times kept, newest first, with their reasons. */
function kept(list: StoredSnapshot[], policy: RetentionPolicy): string[] {
  return applyRetention(list, policy)
    .filter((d) => d.keep)
    .map((d) => `${d.snapshot.snapshot.time.slice(0, 16)} ${d.reasons.join('+')}`);
}

const history = [
  '2025-12-20T10:00Z', '2025-12-29T09:00Z', '2026-01-01T08:00Z', '2026-01-01T20:00Z', '2026-01-02T07:00Z',
  '2026-01-02T07:30Z', '2026-01-05T12:00Z', '2026-01-07T12:00Z', '2026-02-10T12:00Z', '2026-02-11T12:00Z',
].map((t) => snap(t));

test('keep-last keeps the N newest', () => {
  assert.deepEqual(kept(history, { keepLast: 2 }), ['2026-02-11T12:00 last snapshot', '2026-02-10T12:00 last snapshot']);
});

test('keep-daily keeps the newest of each of the last N days that have snapshots, skipping empty days', () => {
  assert.deepEqual(kept(history, { keepDaily: 4 }), [
    '2026-02-11T12:00 daily snapshot',
    '2026-02-10T12:00 daily snapshot',
    '2026-01-07T12:00 daily snapshot',
    '2026-01-05T12:00 daily snapshot',
  ]);
  // -1: every day that has a snapshot; two on one day keep only the newer.
  const all = kept(history, { keepDaily: -1 });
  assert.equal(all.length, 8);
  assert.ok(all.includes('2026-01-02T07:30 daily snapshot') && !all.some((k) => k.startsWith('2026-01-02T07:00')));
});

test('weekly buckets are ISO weeks (29 Dec 2025 and 1 Jan 2026 are the same week), monthly and yearly by the calendar', () => {
  assert.deepEqual(kept(history, { keepWeekly: 4 }), [
    '2026-02-11T12:00 weekly snapshot',
    '2026-01-07T12:00 weekly snapshot',
    '2026-01-02T07:30 weekly snapshot',
    '2025-12-20T10:00 weekly snapshot',
  ]);
  assert.deepEqual(kept(history, { keepMonthly: 2, keepYearly: 5 }), [
    '2026-02-11T12:00 monthly snapshot+yearly snapshot',
    '2026-01-07T12:00 monthly snapshot',
    '2025-12-29T09:00 yearly snapshot',
  ]);
});

test('keep-within counts back from the newest snapshot, not from now; the -daily variant keeps one a day', () => {
  assert.deepEqual(kept(history, { keepWithin: '2d' }), ['2026-02-11T12:00 within 2d', '2026-02-10T12:00 within 2d']);
  assert.deepEqual(kept(history, { keepWithinDaily: '6w' }), [
    '2026-02-11T12:00 daily snapshot within 6w',
    '2026-02-10T12:00 daily snapshot within 6w',
    '2026-01-07T12:00 daily snapshot within 6w',
    '2026-01-05T12:00 daily snapshot within 6w',
    '2026-01-02T07:30 daily snapshot within 6w',
    '2026-01-01T20:00 daily snapshot within 6w',
  ]);
  assert.equal(kept(history, { keepWithinMonthly: '1y' }).length, 3);
  // The boundary itself is outside, as in restic: exactly one day before the newest is not within 1d.
  assert.equal(kept(history, { keepWithinHourly: '1d' }).length, 1);
  assert.equal(kept(history, { keepWithinHourly: '25h' }).length, 2);
});

test('keep-tag keeps without counting; a,b needs both tags', () => {
  const tagged = [snap('2026-03-01T00:00Z', { tags: ['a'] }), snap('2026-03-02T00:00Z', { tags: ['a', 'b'] }), snap('2026-03-03T00:00Z', { tags: ['b'] })];
  assert.deepEqual(kept(tagged, { keepTag: ['a,b'] }), ['2026-03-02T00:00 has tags a,b']);
  assert.deepEqual(kept(tagged, { keepTag: ['a', 'b'] }).length, 3);
  assert.deepEqual(kept(tagged, { keepTag: ['a'], keepLast: 1 }), ['2026-03-03T00:00 last snapshot', '2026-03-02T00:00 has tag a', '2026-03-01T00:00 has tag a']);
});

test('days are the local days of the machine that runs forget', () => {
  const late = [snap('2026-01-02T03:00Z'), snap('2026-01-02T06:00Z')];
  assert.equal(kept(late, { keepDaily: 10 }).length, 1, 'one UTC day');
  process.env.TZ = 'America/New_York';
  try {
    assert.equal(kept(late, { keepDaily: 10 }).length, 2, '22:00 on 1 January and 01:00 on 2 January in New York');
  } finally {
    process.env.TZ = 'UTC';
  }
});

test('durations: y, m (months), w, d, h, combined; anything else is refused', () => {
  assert.deepEqual(parseDuration('1y6m2w3d12h'), { years: 1, months: 6, days: 17, hours: 12 });
  for (const bad of ['', '3', 'd', '1.5d', '-2d', '3q', '2d ', '1 d']) assert.throws(() => parseDuration(bad), PolicyError, bad);
  // A month before 31 March is 3 March (31 February, normalised), as restic (Go's AddDate) counts.
  const march = [snap('2026-03-31T12:00Z'), snap('2026-03-03T12:01Z'), snap('2026-03-03T11:59Z')];
  assert.equal(kept(march, { keepWithin: '1m' }).length, 2);
});

test('bad policies and empty ones are refused', () => {
  assert.throws(() => applyRetention(history, { keepLast: 1.5 }), PolicyError);
  assert.throws(() => applyRetention(history, { keepDaily: -2 }), PolicyError);
  assert.throws(() => applyRetention(history, { keepTag: ['a,'] }), PolicyError);
  assert.ok(isEmptyPolicy({}) && isEmptyPolicy({ keepLast: 0 }) && !isEmptyPolicy({ keepWithin: '1d' }) && !isEmptyPolicy({ keepTag: ['x'] }));
  assert.throws(() => planForget(history, { groupBy: [] }), /no policy given/);
  assert.throws(() => planForget(history, { groupBy: [], ids: [history[0]!.id.slice(0, 63)], policy: { keepLast: 1 } }), /not both/);
});

test('grouping by host, paths and tags; filters choose the snapshots first', () => {
  const mixed = [
    snap('2026-01-01T00:00Z', { host: 'a', paths: ['/x', '/y'] }),
    snap('2026-01-02T00:00Z', { host: 'a', paths: ['/y', '/x'] }),
    snap('2026-01-03T00:00Z', { host: 'b', paths: ['/x', '/y'], tags: ['t'] }),
    snap('2026-01-04T00:00Z', { host: 'a', paths: ['/z'], tags: ['t'] }),
  ];
  assert.deepEqual(groupSnapshots(mixed, parseGroupBy('host,paths')).map((g) => g.snapshots.length), [2, 1, 1]);
  assert.deepEqual(groupSnapshots(mixed, parseGroupBy('host')).map((g) => [g.key.host, g.snapshots.length]), [['a', 3], ['b', 1]]);
  assert.deepEqual(groupSnapshots(mixed, parseGroupBy('tags')).map((g) => g.snapshots.length), [2, 2]);
  assert.deepEqual(groupSnapshots(mixed, parseGroupBy('')).map((g) => g.snapshots.length), [4]);
  assert.deepEqual(groupSnapshots(mixed, parseGroupBy('host'), { tags: [['t']] }).map((g) => g.key.host), ['b', 'a']);
  assert.throws(() => parseGroupBy('host,hots'), GroupByError);
  // Keep-last 1 per host and paths: the newest of each of the three groups.
  const groups = planForget(mixed, { groupBy: parseGroupBy('host,paths'), policy: { keepLast: 1 } });
  assert.deepEqual(groups.map((g) => [g.keep.length, g.remove.length]), [[1, 1], [1, 0], [1, 0]]);
});
