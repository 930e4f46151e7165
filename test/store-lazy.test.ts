import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LazyStore } from '../src/store/lazy.ts';
import { StoreError, type Store } from '../src/store/store.ts';
import { MemoryStore } from './helpers/memory-store.ts';
import { storeConformance } from './store-conformance.ts';

/** A LazyStore over a MemoryStore that counts how often it was created and closed. */
function countingLazyStore(): { store: LazyStore; created: () => number; closed: () => number } {
  let created = 0;
  let closed = 0;
  const store = new LazyStore('memory:', async () => {
    created++;
    const backend = new MemoryStore();
    backend.close = async () => {
      closed++;
    };
    return backend;
  });
  return { store, created: () => created, closed: () => closed };
}

storeConformance('lazy', async () => new LazyStore('memory:', async () => new MemoryStore()));

describe('LazyStore', () => {
  it('creates the backend once, on first use, even for concurrent calls', async () => {
    const { store, created } = countingLazyStore();
    assert.equal(created(), 0);
    await Promise.all([store.put('config', Buffer.from('x')), store.stat('config'), store.stat(`keys/${'a'.repeat(64)}`)]);
    assert.equal(created(), 1);
    assert.deepEqual(await store.get('config'), Buffer.from('x'));
    const listed = [];
    for await (const info of store.list('keys')) listed.push(info);
    assert.deepEqual(listed, []);
    await store.delete('config');
    assert.equal(created(), 1);
  });

  it('closes the backend only if it was created, and never creates one to close it', async () => {
    const unused = countingLazyStore();
    await unused.store.close();
    assert.equal(unused.created(), 0);
    const used = countingLazyStore();
    await used.store.stat('config');
    await used.store.close();
    assert.deepEqual([used.created(), used.closed()], [1, 1]);
  });

  it('reports a failed creation from every call, as the same StoreError, without trying again', async () => {
    const denied = new StoreError('denied', 's3:http://host/bucket: no S3 credentials');
    let attempts = 0;
    const store: Store = new LazyStore('s3:http://host/bucket', async () => {
      attempts++;
      throw denied;
    });
    await assert.rejects(store.stat('config'), (err) => err === denied);
    await assert.rejects(store.put('config', Buffer.from('x')), (err) => err === denied);
    await assert.rejects(store.list('keys')[Symbol.asyncIterator]().next(), (err) => err === denied);
    assert.equal(attempts, 1);
    await store.close();
  });
});
