// The store of a write-only agent: an S3 destination whose credentials only the server holds. Every
// request first asks the server (the broker) for a pre-signed URL, then goes straight to the storage.
// The server signs reads of any object and uploads of names that are not taken; there is no way to
// delete, so this store refuses `delete` itself and the server would refuse it anyway.
import { checkFolder, checkObjectName } from './layout.ts';
import { StoreError, alreadyStored, eitherSignal, pastEnd, type ByteRange, type ObjectInfo, type PutOptions, type Store } from './store.ts';

export interface SignedRequest {
  readonly url: string;
  readonly headers: Record<string, string>;
}

/** What the server answers; implemented by the agent's API client. */
export interface StorageBroker {
  /** A URL to upload a new object, or the size of the object already stored under that name. */
  presignPut(name: string, size: number): Promise<SignedRequest | { readonly existingSize: number }>;
  presignGet(name: string): Promise<SignedRequest>;
  stat(name: string): Promise<number | undefined>;
  /** One page of a folder's objects sorted by name, after `after`; `next` when there are more. */
  list(dir: string, after: string | undefined): Promise<{ objects: ObjectInfo[]; next?: string }>;
}

export class PresignedStore implements Store {
  readonly location: string;
  private readonly broker: StorageBroker;
  private readonly fetch: typeof globalThis.fetch;

  constructor(location: string, broker: StorageBroker, options: { fetch?: typeof globalThis.fetch } = {}) {
    this.location = location;
    this.broker = broker;
    this.fetch = options.fetch ?? globalThis.fetch;
  }

  private async send(action: string, request: SignedRequest, init: RequestInit, stop?: AbortSignal): Promise<Response> {
    const timeout = AbortSignal.timeout(120_000);
    try {
      return await this.fetch(request.url, { ...init, headers: { ...request.headers, ...(init.headers as Record<string, string>) }, signal: eitherSignal(timeout, stop) ?? timeout });
    } catch (err) {
      stop?.throwIfAborted();
      throw new StoreError('transient', `${action}: ${(err as Error).message}`, { cause: err });
    }
  }

  private failure(action: string, res: Response, body: string): StoreError {
    const code = /<Code>([^<]+)<\/Code>/.exec(body)?.[1];
    const detail = `HTTP ${res.status}${code ? ` ${code}` : ''}`;
    if (res.status === 404) return new StoreError('not-found', `${action}: not found`);
    if (res.status === 403 || res.status === 401) return new StoreError('denied', `${action}: the storage refused the pre-signed URL (${detail}); the server's credentials or clock may be wrong`);
    if (res.status === 429 || res.status >= 500) return new StoreError('transient', `${action}: ${detail}`);
    return new StoreError('permanent', `${action}: ${detail}`);
  }

  async put(name: string, data: Uint8Array, options?: PutOptions): Promise<boolean> {
    const action = `writing ${name} to ${this.location}`;
    checkObjectName(name, action);
    const signed = await this.broker.presignPut(name, data.length);
    if ('existingSize' in signed) return alreadyStored(action, signed.existingSize, data.length);
    // A stopped PUT is cut off: S3 stores nothing of an incomplete body.
    const res = await this.send(action, signed, { method: 'PUT', body: data, headers: { 'content-length': String(data.length) } }, options?.signal);
    const body = await res.text();
    if (res.ok) return true;
    // Another writer created it after the server looked: same name means same content, if the size agrees.
    if (res.status === 412) {
      const size = await this.broker.stat(name);
      if (size !== undefined) return alreadyStored(action, size, data.length);
    }
    throw this.failure(action, res, body);
  }

  async get(name: string, range?: ByteRange): Promise<Buffer> {
    const action = `reading ${name} from ${this.location}`;
    checkObjectName(name, action);
    if (range?.length === 0) {
      const size = await this.broker.stat(name);
      if (size === undefined) throw new StoreError('not-found', `${action}: not found`);
      if (range.offset > size) throw pastEnd(action, range);
      return Buffer.alloc(0);
    }
    const signed = await this.broker.presignGet(name);
    const headers: Record<string, string> = range ? { range: `bytes=${range.offset}-${range.offset + range.length - 1}` } : {};
    const res = await this.send(action, signed, { method: 'GET', headers });
    const bytes = Buffer.from(await res.arrayBuffer());
    if (range && res.status === 416) throw pastEnd(action, range);
    if (!res.ok) throw this.failure(action, res, bytes.toString('utf8', 0, 2000));
    if (!range) return bytes;
    // A server may ignore Range (200 with the whole object) or send more than asked (see S3Store).
    const start = res.status === 206 ? Number(/^bytes (\d+)-/.exec(res.headers.get('content-range') ?? '')?.[1] ?? NaN) : 0;
    const from = range.offset - start;
    if (!(from >= 0) || from + range.length > bytes.length) throw pastEnd(action, range);
    return bytes.subarray(from, from + range.length);
  }

  async stat(name: string): Promise<ObjectInfo | undefined> {
    checkObjectName(name, `checking ${name} in ${this.location}`);
    const size = await this.broker.stat(name);
    return size === undefined ? undefined : { name, size };
  }

  async *list(dir: string): AsyncIterable<ObjectInfo> {
    checkFolder(dir, `listing ${dir} in ${this.location}`);
    let after: string | undefined;
    do {
      const page = await this.broker.list(dir, after);
      yield* page.objects;
      after = page.next;
    } while (after !== undefined);
  }

  async delete(name: string): Promise<void> {
    throw new StoreError('denied', `deleting ${name} from ${this.location}: this agent is write-only; forget and prune run where the storage credentials and a key are held (coffer forget --repo with credentials, or the server)`);
  }

  async close(): Promise<void> {}
}
