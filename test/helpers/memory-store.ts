// A Store in a Map, for tests of code above the store layer and of the decorators. It checks names
// against the repository layout as every real backend does.
import { belongsTo, checkFolder, checkObjectName, checkObjectSize } from '../../src/store/layout.ts';
import { StoreError, alreadyStored, pastEnd, type ByteRange, type ObjectInfo, type PutOptions, type Store } from '../../src/store/store.ts';

export class MemoryStore implements Store {
  readonly location: string;
  readonly objects = new Map<string, Buffer>();
  /** Modification times, by the store's clock (settable, to age objects in tests). */
  readonly modified = new Map<string, number>();
  now: () => number = Date.now;

  constructor(location = 'memory:') {
    this.location = location;
  }

  async put(name: string, data: Uint8Array, options?: PutOptions): Promise<boolean> {
    const action = `writing ${name} to ${this.location}`;
    checkObjectName(name, action);
    options?.signal?.throwIfAborted();
    const existing = this.objects.get(name);
    if (existing) return alreadyStored(action, existing.length, data.length);
    this.objects.set(name, Buffer.from(data));
    this.modified.set(name, this.now());
    return true;
  }

  async get(name: string, range?: ByteRange): Promise<Buffer> {
    const action = `reading ${name} from ${this.location}`;
    checkObjectName(name, action);
    const data = this.objects.get(name);
    if (!data) throw new StoreError('not-found', `${action}: not found`);
    checkObjectSize(name, range ? range.length : data.length, action);
    if (!range) return Buffer.from(data);
    if (range.offset + range.length > data.length) throw pastEnd(action, range);
    return Buffer.from(data.subarray(range.offset, range.offset + range.length));
  }

  async stat(name: string): Promise<ObjectInfo | undefined> {
    checkObjectName(name, `checking ${name} in ${this.location}`);
    const data = this.objects.get(name);
    return data && { name, size: data.length, modified: this.modified.get(name)! };
  }

  async *list(dir: string): AsyncIterable<ObjectInfo> {
    const folder = checkFolder(dir, `listing ${dir} in ${this.location}`);
    for (const [name, data] of [...this.objects]) if (belongsTo(folder, name)) yield { name, size: data.length, modified: this.modified.get(name)! };
  }

  async delete(name: string): Promise<void> {
    checkObjectName(name, `deleting ${name} from ${this.location}`);
    this.objects.delete(name);
    this.modified.delete(name);
  }

  async close(): Promise<void> {}
}
