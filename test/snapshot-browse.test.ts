// The dashboard's snapshot browser lists a directory in the order a person expects (note-2 before
// note-10, any case together), a page at a time, each page found from the last name of the one before.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { BackupRun } from '../src/engine/backup/backup.ts';
import { listDirectory } from '../src/engine/snapshot-browse.ts';
import { SnapshotView } from '../src/engine/snapshot-view.ts';
import { initRepository, Repository } from '../src/repo/repository.ts';
import { LocalStore } from '../src/store/local.ts';
import { tempDir } from './helpers/cli.ts';

test('a directory is listed in natural order, a page at a time, with and without a filter', async (t) => {
  const dir = tempDir(t);
  const source = path.join(dir, 'src');
  fs.mkdirSync(source);
  const names = ['note-10', 'note-2', 'note-1', 'Note-3', 'b', 'A', 'note-20', 'x9', 'x10'];
  for (const name of names) fs.writeFileSync(path.join(source, name), name);
  await initRepository([new LocalStore(path.join(dir, 'repo'))], 'pw');
  const repo = await Repository.open([new LocalStore(path.join(dir, 'repo'))], 'pw');
  t.after(() => repo.close());
  await repo.loadIndex();
  const { snapshot } = await new BackupRun(repo, { paths: [source], parent: null }).run();
  const view = await SnapshotView.open(repo, snapshot);
  const expected = ['A', 'b', 'note-1', 'note-2', 'Note-3', 'note-10', 'note-20', 'x9', 'x10'];

  const pages: string[][] = [];
  let after: string | undefined;
  do {
    const page = await listDirectory(view, source, { limit: 4, ...(after === undefined ? {} : { after }) });
    assert.equal(page.total, names.length);
    pages.push(page.entries.map((e) => e.name));
    after = page.next;
  } while (after !== undefined);
  assert.deepEqual(pages, [expected.slice(0, 4), expected.slice(4, 8), expected.slice(8)]);

  const first = await listDirectory(view, source, { limit: 2, filter: 'NOTE' });
  assert.deepEqual([first.entries.map((e) => e.name), first.matches, first.next], [['note-1', 'note-2'], 5, 'note-2']);
  const rest = await listDirectory(view, source, { limit: 10, filter: 'note', after: first.next! });
  assert.deepEqual([rest.entries.map((e) => e.name), rest.offset, rest.next], [['Note-3', 'note-10', 'note-20'], 2, undefined]);
});
