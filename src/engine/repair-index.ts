// `repair index`: the index rebuilt from the packs themselves. Every pack's header (trailer, then
// header: two range reads) is read from a replica where it verifies; new index files list them all,
// a deletion record names the old files as superseded, then the old files go. Runs under an exclusive
// marker (a prune must not delete index files or packs meanwhile); backups go on beside it.
import type { IndexedPack } from '../format/index-file.ts';
import { sealDeletionRecord } from '../repo/deletion-records.ts';
import { readPackHeader } from '../repo/pack-reader.ts';
import { whoAmI, type Repository } from '../repo/repository.ts';
import { WriterSession } from '../repo/writer-markers.ts';
import { idOf, type Store } from '../store/store.ts';
import { INDEX_FILE_BLOBS } from './prune/index-files.ts';

export interface RepairIndexResult {
  readonly packs: number;
  readonly blobs: number;
  /** Packs whose header could not be read on any replica: their blobs are not indexed (lost unless a copy is elsewhere). */
  readonly damaged: readonly { name: string; reason: string }[];
  /** Packs found on some replicas only (coffer sync or prune copies them to the others). */
  readonly partial: readonly string[];
  readonly written: number;
  readonly removed: number;
}

export interface RepairIndexOptions {
  readonly signal?: AbortSignal;
  readonly onProgress?: (done: number, total: number) => void;
}

export async function repairIndex(repo: Repository, options: RepairIndexOptions = {}): Promise<RepairIndexResult> {
  const session = await WriterSession.start(repo, { command: 'repair index', exclusive: true });
  try {
    // Every pack on every replica, with the replicas that hold it; the index files there now.
    const packs = new Map<string, { size: number; stores: Store[] }>();
    const oldIndex = new Set<string>();
    for (const store of repo.stores) {
      for await (const o of store.list('data')) {
        const entry = packs.get(o.name);
        if (entry) entry.stores.push(store);
        else packs.set(o.name, { size: o.size, stores: [store] });
      }
      for await (const o of store.list('index')) oldIndex.add(o.name);
    }
    const damaged: { name: string; reason: string }[] = [];
    const partial: string[] = [];
    let batch: IndexedPack[] = [];
    let batchBlobs = 0;
    let blobs = 0;
    let indexed = 0;
    let written = 0;
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return;
      const sealed = repo.sealIndex(batch);
      await Promise.all(repo.stores.map((s) => s.put(sealed.name, sealed.bytes)));
      written++;
      batch = [];
      batchBlobs = 0;
    };
    let done = 0;
    for (const [name, { size, stores }] of packs) {
      options.signal?.throwIfAborted();
      if (stores.length < repo.stores.length) partial.push(name);
      let pack: IndexedPack | undefined;
      let reason = '';
      for (const store of stores) {
        try {
          pack = await readPackHeader(store, name, size, repo.keys.dataKey);
          break;
        } catch (err) {
          reason ||= (err as Error).message;
        }
      }
      options.onProgress?.(++done, packs.size);
      if (!pack) {
        damaged.push({ name, reason });
        continue;
      }
      batch.push(pack);
      batchBlobs += pack.entries.length;
      blobs += pack.entries.length;
      indexed++;
      if (batchBlobs >= INDEX_FILE_BLOBS) await flush();
    }
    await flush();
    // The old files are superseded by the new ones: named in a record first (a replica away now learns
    // it), then deleted.
    let removed = 0;
    if (oldIndex.size > 0) {
      const record = sealDeletionRecord(repo, {
        timeMs: Date.now(),
        host: whoAmI().host,
        snapshots: [],
        packs: [],
        indexes: [...oldIndex].map((name) => Buffer.from(idOf(name), 'hex')),
        writers: [],
      });
      await Promise.all(repo.stores.map((s) => s.put(record.name, record.bytes)));
      for (const name of oldIndex) {
        await Promise.all(repo.stores.map((s) => s.delete(name)));
        removed++;
      }
    }
    return { packs: indexed, blobs, damaged, partial, written, removed };
  } finally {
    await session.end();
  }
}
