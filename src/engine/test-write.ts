// Before a destination is trusted with backups: write a probe object, read it back, delete it.
import crypto from 'node:crypto';
import type { Store } from '../store/store.ts';

export interface TestWriteResult {
  readonly location: string;
  readonly ok: boolean;
  /** Round trip time of write + read + delete. */
  readonly ms: number;
  readonly error?: string;
}

export async function testWrite(store: Store): Promise<TestWriteResult> {
  const probe = crypto.randomBytes(64 * 1024);
  // Named by its SHA-256 like every other object, so that REST servers, which check that, take it too.
  const name = `tmp/${crypto.createHash('sha256').update(probe).digest('hex')}`;
  const started = performance.now();
  try {
    await store.put(name, probe);
    const back = await store.get(name);
    if (!back.equals(probe)) throw new Error('the probe read back differs from what was written');
    await store.delete(name);
    if (await store.stat(name)) throw new Error('the probe could not be deleted');
    return { location: store.location, ok: true, ms: performance.now() - started };
  } catch (err) {
    await store.delete(name).catch(() => {});
    return { location: store.location, ok: false, ms: performance.now() - started, error: (err as Error).message };
  }
}
