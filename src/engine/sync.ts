// Bringing replicas up to date: copies to each target whatever the source holds and it lacks (config
// first for a new replica, then keys, packs, index files, snapshots). No passphrase is needed: the
// objects are copied as they are, still encrypted.
import { decodeConfig } from '../format/config.ts';
import { NoRepositoryError, RepositoryError } from '../repo/repository.ts';
import { StoreError, type Store } from '../store/store.ts';
import { Destination, type DestinationStatus } from './destination.ts';
import { copyMissing, missingFrom, takeInventory } from './replicas.ts';

export interface SyncTargetResult {
  readonly location: string;
  readonly copied: number;
  readonly bytes: number;
  readonly error?: string;
}

/** The source's config: a source that is no repository stops the whole sync. */
async function sourceConfig(source: Store): Promise<Buffer> {
  try {
    return await source.get('config');
  } catch (err) {
    if (err instanceof StoreError && err.kind === 'not-found') throw new NoRepositoryError(`${source.location} is not a Coffer repository (no config)`);
    throw err;
  }
}

/** Whether the target holds the source's repository already; a target that holds another one is refused. */
async function sameRepository(config: Buffer, target: Store): Promise<{ targetHasConfig: boolean }> {
  const sourceId = decodeConfig(config).id;
  let existing: Buffer | undefined;
  try {
    existing = await target.get('config');
  } catch (err) {
    if (!(err instanceof StoreError && err.kind === 'not-found')) throw err;
  }
  if (existing && decodeConfig(existing).id !== sourceId) throw new RepositoryError(`${target.location} holds a different repository; refusing to mix them`);
  return { targetHasConfig: existing !== undefined };
}

export class SyncRun {
  private readonly source: Store;
  readonly destinations: readonly Destination[];

  constructor(source: Store, targets: readonly Store[]) {
    this.source = source;
    this.destinations = targets.map((t) => new Destination(t));
  }

  progress(): DestinationStatus[] {
    return this.destinations.map((d) => d.status());
  }

  async run(): Promise<SyncTargetResult[]> {
    const config = await sourceConfig(this.source);
    const sourceInventory = await takeInventory(this.source);
    return Promise.all(
      this.destinations.map(async (d): Promise<SyncTargetResult> => {
        try {
          const { targetHasConfig } = await sameRepository(config, d.store);
          const missing = missingFrom(await takeInventory(d.store), [{ store: this.source, inventory: sourceInventory }]);
          await copyMissing(d, missing, 0);
          // The config goes last on a new replica: only a complete copy looks like a repository.
          if (!targetHasConfig) await d.store.put('config', config);
          d.markFinished();
          return { location: d.store.location, copied: missing.length, bytes: missing.reduce((sum, m) => sum + m.size, 0) };
        } catch (err) {
          d.detach(err as Error);
          return { location: d.store.location, copied: 0, bytes: 0, error: (err as Error).message };
        }
      }),
    );
  }
}
