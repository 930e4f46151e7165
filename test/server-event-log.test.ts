// The event log's group commit: every append is written, in order, whenever it comes.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { EventLog } from '../src/server/events/event-log.ts';
import { openServerDatabase } from '../src/server/db/open.ts';

function within<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
  return Promise.race([work, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms))]);
}

test('appends made one after the other are each written at once (none waits for a later append)', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-events-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const d = await openServerDatabase({ dataDir: dir });
  const log = new EventLog(d.db, d.kind, { pollMs: 60_000 });
  await log.start();
  try {
    // Awaited back to back, as routes do: the next append comes in the write's own wake.
    const sequence = async (): Promise<void> => {
      for (let i = 0; i < 5; i++) await log.append({ type: 'test', data: { i } });
    };
    await within(2000, 'five appends in a row', sequence());
    await within(2000, 'a burst', Promise.all(Array.from({ length: 50 }, (_, i) => log.append({ type: 'burst', data: { i } }))));
    const { events } = await log.since(0, {});
    assert.deepEqual(events.filter((e) => e.type === 'test').map((e) => (e.data as { i: number }).i), [0, 1, 2, 3, 4]);
    assert.equal(events.filter((e) => e.type === 'burst').length, 50);
  } finally {
    await log.stop();
    await d.close();
  }
});
