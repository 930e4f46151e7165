import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe } from 'node:test';
import { LocalStore } from '../src/store/local.ts';
import { storeConformance } from './store-conformance.ts';
import { MemoryStore } from './helpers/memory-store.ts';

describe('local store', async () => {
  const parent = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-local-store-'));
  after(() => fs.rm(parent, { recursive: true, force: true }));
  let n = 0;
  storeConformance('local', async () => new LocalStore(path.join(parent, `repo-${n++}`)));
});

// The in-memory store of the tests must keep the same promises as the real ones.
storeConformance('memory (test helper)', async () => new MemoryStore());
