// --dry-run: reads pass through, writes and deletes are dropped, so a run shows what it would store.
import type { ByteRange, ObjectHint, ObjectInfo, Store } from './store.ts';

export class DryRunStore implements Store {
  private readonly inner: Store;
  readonly location: string;

  constructor(inner: Store) {
    this.inner = inner;
    this.location = inner.location;
  }

  async put(name: string): Promise<boolean> {
    return !(await this.inner.stat(name));
  }

  get(name: string, range?: ByteRange, hint?: ObjectHint): Promise<Buffer> {
    return this.inner.get(name, range, hint);
  }

  stat(name: string): Promise<ObjectInfo | undefined> {
    return this.inner.stat(name);
  }

  list(dir: string): AsyncIterable<ObjectInfo> {
    return this.inner.list(dir);
  }

  async delete(): Promise<void> {}

  async removeIncomplete(): Promise<number> {
    return 0;
  }

  /** Copies in a local cache are not the repository: a dry run may tidy them as any reader does. */
  async pruneCopies(isIndexed: (packName: string) => boolean): Promise<void> {
    await this.inner.pruneCopies?.(isIndexed);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
