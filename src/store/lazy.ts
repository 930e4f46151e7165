// A store that creates its backend on first use. Opening a location stays synchronous and cheap, and
// the backend's module (the AWS SDK, ssh2: a few hundred milliseconds to load) is loaded only by a
// command that actually talks to that store.
import type { ByteRange, ObjectHint, ObjectInfo, PutOptions, Store } from './store.ts';

export class LazyStore implements Store {
  readonly location: string;
  private readonly create: () => Promise<Store>;
  private store: Promise<Store> | undefined;

  /** `location` must be the one the created store will have, so messages name it the same before and after. */
  constructor(location: string, create: () => Promise<Store>) {
    this.location = location;
    this.create = create;
  }

  /**
   * The backend, created by the first call. A creation that failed is not retried: its error (missing
   * credentials, say) will not go away, and every later call reports it again.
   */
  private backend(): Promise<Store> {
    this.store ??= this.create();
    return this.store;
  }

  async put(name: string, data: Uint8Array, options?: PutOptions): Promise<boolean> {
    return (await this.backend()).put(name, data, options);
  }

  async get(name: string, range?: ByteRange, hint?: ObjectHint): Promise<Buffer> {
    return (await this.backend()).get(name, range, hint);
  }

  async stat(name: string): Promise<ObjectInfo | undefined> {
    return (await this.backend()).stat(name);
  }

  async *list(dir: string): AsyncIterable<ObjectInfo> {
    yield* (await this.backend()).list(dir);
  }

  async delete(name: string): Promise<void> {
    return (await this.backend()).delete(name);
  }

  async removeIncomplete(before: number): Promise<number> {
    return (await (await this.backend()).removeIncomplete?.(before)) ?? 0;
  }

  async pruneCopies(isIndexed: (packName: string) => boolean): Promise<void> {
    await (await this.backend()).pruneCopies?.(isIndexed);
  }

  /** Closes the backend if one was created; never creates one just to close it. */
  async close(): Promise<void> {
    if (!this.store) return;
    // A backend that failed to come up holds nothing to close.
    const store = await this.store.catch(() => undefined);
    await store?.close();
  }
}
