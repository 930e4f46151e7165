// A repository in an S3-compatible bucket (AWS, MinIO, Garage, B2, Wasabi, …), optionally under a
// prefix. S3 has no rename, so put-if-absent is a HEAD followed by a conditional PUT (If-None-Match: *):
// servers that honour the condition close the race between two writers, the others (s3rver, older
// MinIO) leave only a window in which both write the same bytes under a content-addressed name.
// Credentials come from the AWS SDK's own chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE
// and the shared config and credentials files, SSO, web identity, container and instance roles).
import https from 'node:https';
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { belongsTo, checkFolder, checkObjectName, checkObjectSize, maxObjectSize, plausibleSize, type ForeignObjectHandler } from './layout.ts';
import { parseS3Location, s3DisplayLocation } from './locations.ts';
import { StoreError, alreadyStored, pastEnd, type ByteRange, type ObjectInfo, type PutOptions, type Store } from './store.ts';
import { NETWORK_ERROR_CODES } from './network-errors.ts';
import { describeTlsError, tlsAgentOptions, type TlsOptions } from './tls.ts';

const MiB = 1024 * 1024;

export interface S3StoreOptions {
  /** Bucket in the path (http://host/bucket/key) instead of the host name. Default: on unless the host is AWS. */
  readonly pathStyle?: boolean;
  /**
   * The SDK's default ('WHEN_SUPPORTED') sends CRC32 checksums with aws-chunked bodies, which many
   * S3-compatible servers store verbatim or reject; 'WHEN_REQUIRED' (the default here) avoids that.
   */
  readonly checksums?: 'WHEN_REQUIRED' | 'WHEN_SUPPORTED';
  /** Objects larger than this are uploaded in parts of this size (S3 minimum 5 MiB). Default 16 MiB. */
  readonly partSize?: number;
  /** Parts of one object uploaded at once. Default 4. */
  readonly partConcurrency?: number;
  /** Keys per ListObjectsV2 request (S3's maximum and default is 1000). */
  readonly pageSize?: number;
  /**
   * Where AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_PROFILE, AWS_REGION and
   * AWS_DEFAULT_REGION are read. Default process.env. Without a key pair here, the SDK's chain finds
   * credentials (it reads process.env and the shared files itself).
   */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Told about each listed key that is not a repository object (skipped). */
  readonly onForeign?: ForeignObjectHandler;
  /** Extra CA certificates, or no certificate check, for self-hosted servers. */
  readonly tls?: TlsOptions;
}

function isAwsHost(endpoint: string): boolean {
  return new URL(endpoint).hostname.endsWith('.amazonaws.com');
}

/** The region an AWS endpoint names: s3.eu-west-1.amazonaws.com, s3-eu-west-1.amazonaws.com, s3.dualstack.… */
export function regionOfEndpoint(endpoint: string): string | undefined {
  return /(?:^|\.)s3[.-](?:dualstack\.)?([a-z]{2}(?:-[a-z]+)+-\d+)\.amazonaws\.com$/.exec(new URL(endpoint).hostname)?.[1];
}

/** The SDK asks a region provider on every request: the answer is looked up once. */
function memoized<T>(get: () => Promise<T>): () => Promise<T> {
  let value: Promise<T> | undefined;
  return () => (value ??= get());
}

/**
 * The region the SDK finds by itself (AWS_REGION, the profile's `region` in ~/.aws/config), else
 * us-east-1, which self-hosted servers expect or ignore.
 */
async function sdkRegion(profile: string | undefined): Promise<string> {
  const probe = new S3Client(profile ? { profile } : {});
  try {
    return await probe.config.region();
  } catch {
    return 'us-east-1';
  } finally {
    probe.destroy();
  }
}

export class S3Store implements Store {
  readonly location: string;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly client: S3Client;
  private readonly partSize: number;
  private readonly partConcurrency: number;
  private readonly pageSize: number | undefined;
  private readonly onForeign: ForeignObjectHandler;

  constructor(location: string, options: S3StoreOptions = {}) {
    const parsed = parseS3Location(location);
    const { endpoint, bucket, prefix } = parsed;
    this.bucket = bucket;
    this.prefix = prefix;
    this.location = s3DisplayLocation(parsed);
    this.partSize = options.partSize ?? 16 * MiB;
    this.partConcurrency = options.partConcurrency ?? 4;
    this.pageSize = options.pageSize;
    this.onForeign = options.onForeign ?? (() => {});
    const env = options.env ?? process.env;
    const { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey, AWS_PROFILE: profile } = env;
    // As in the SDK's chain: a key pair in the environment, unless AWS_PROFILE asks for a profile.
    const keyPair = accessKeyId && secretAccessKey && !profile ? { accessKeyId, secretAccessKey, sessionToken: env.AWS_SESSION_TOKEN } : undefined;
    const checksums = options.checksums ?? 'WHEN_REQUIRED';
    // An agent of its own only for --cacert or --insecure-tls (else the SDK's: keep-alive, 50 sockets).
    const agentOptions = tlsAgentOptions(options.tls, this.location);
    const tls = Object.keys(agentOptions).length > 0 ? agentOptions : undefined;
    this.client = new S3Client({
      endpoint,
      region: env.AWS_REGION || env.AWS_DEFAULT_REGION || regionOfEndpoint(endpoint) || memoized(() => sdkRegion(profile)),
      forcePathStyle: options.pathStyle ?? !isAwsHost(endpoint),
      ...(keyPair ? { credentials: keyPair } : profile ? { profile } : {}),
      requestChecksumCalculation: checksums,
      responseChecksumValidation: checksums,
      // Retries belong to RetryStore, which reports them; SDK retries underneath would multiply attempts.
      maxAttempts: 1,
      // A stalled connection must fail (and be retried) instead of hanging the backup forever.
      requestHandler: { connectionTimeout: 15_000, socketTimeout: 120_000, ...(tls ? { httpsAgent: new https.Agent({ keepAlive: true, maxSockets: 50, ...tls }) } : {}) },
    });
  }

  /** A store whose credentials are found before it is used, so that missing ones fail at once and once. */
  static async open(location: string, options: S3StoreOptions = {}): Promise<S3Store> {
    const store = new S3Store(location, options);
    try {
      await store.client.config.credentials();
    } catch (err) {
      store.client.destroy();
      throw describeCredentialsError(err, store.location, (options.env ?? process.env).AWS_PROFILE);
    }
    return store;
  }

  /** The key of a name, which must be an object name of the layout: never a key outside the repository. */
  private key(name: string, action: string): string {
    checkObjectName(name, action);
    return this.prefix + name;
  }

  async put(name: string, data: Uint8Array, options?: PutOptions): Promise<boolean> {
    const action = `writing ${name} to ${this.location}`;
    const key = this.key(name, action);
    const signal = options?.signal;
    // HEAD first also saves uploading an object another backup already stored.
    const existing = await this.stat(name);
    if (existing) return alreadyStored(action, existing.size, data.length);
    signal?.throwIfAborted();
    try {
      // lib-storage sends one PutObject up to partSize and a multipart upload above it; it passes
      // IfNoneMatch on to CompleteMultipartUpload and aborts the upload if a part fails. Stopped, its
      // requests are cut (S3 keeps nothing of a cut-off PUT) and the multipart upload is aborted, never
      // completed under the object's name.
      const upload = new Upload({
        client: signal ? cutOff(this.client, signal) : this.client,
        params: { Bucket: this.bucket, Key: key, Body: data, IfNoneMatch: '*' },
        partSize: this.partSize,
        queueSize: this.partConcurrency,
      });
      const stop = (): void => void upload.abort();
      signal?.addEventListener('abort', stop, { once: true });
      try {
        await upload.done();
      } finally {
        signal?.removeEventListener('abort', stop);
      }
      return true;
    } catch (err) {
      signal?.throwIfAborted();
      // Another writer created the object between our HEAD and PUT.
      if (statusOf(err) === 412 || codeOf(err) === 'ConditionalRequestConflict') {
        const winner = await this.stat(name);
        if (winner) return alreadyStored(action, winner.size, data.length);
      }
      throw describeS3Error(err, action);
    }
  }

  /**
   * The object, or `range` of it. Sizes are checked before the body is read, and no more of a body is
   * read than asked for: a hostile or broken server answering with gigabytes costs nothing.
   */
  async get(name: string, range?: ByteRange): Promise<Buffer> {
    const action = `reading ${name} from ${this.location}`;
    const key = this.key(name, action);
    if (range) checkObjectSize(name, range.length, action);
    // 'bytes=5-4' is not a valid range, and servers answer it with the whole object.
    if (range?.length === 0) return this.emptyRange(name, range, action);
    let res;
    try {
      res = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: range ? `bytes=${range.offset}-${range.offset + range.length - 1}` : undefined }),
      );
    } catch (err) {
      if (range && statusOf(err) === 416) throw pastEnd(action, range);
      throw describeS3Error(err, action);
    }
    const body = res.Body as unknown as BodyStream;
    const declared = res.ContentLength;
    try {
      if (!range) {
        if (declared !== undefined) checkObjectSize(name, declared, action);
        const { bytes, ended } = await readBody(body, 0, declared ?? maxObjectSize(name) + 1);
        if (declared === undefined && !ended) checkObjectSize(name, maxObjectSize(name) + 1, action);
        if (declared !== undefined && bytes.length !== declared) throw shortAnswer(action, bytes.length, declared);
        return bytes;
      }
      // Servers may send more than asked: the whole object when they ignore Range, or up to the end
      // (s3rver reads 'bytes=0-0' as 'bytes=0-'). Content-Range says where the answer starts.
      const start = answerStart(res.ContentRange, action);
      const skip = range.offset - start;
      if (skip < 0) throw pastEnd(action, range);
      const { bytes, received } = await readBody(body, skip, range.length);
      if (bytes.length === range.length) return bytes;
      if (declared !== undefined && received < declared) throw shortAnswer(action, received, declared);
      // A range that starts inside the object but ends past it comes back short rather than as an error.
      throw pastEnd(action, range);
    } catch (err) {
      throw describeS3Error(err, action);
    } finally {
      body.destroy?.();
    }
  }

  private async emptyRange(name: string, range: ByteRange, action: string): Promise<Buffer> {
    const info = await this.stat(name);
    if (!info) throw new StoreError('not-found', `${action}: not found`);
    if (range.offset > info.size) throw pastEnd(action, range);
    return Buffer.alloc(0);
  }

  async stat(name: string): Promise<ObjectInfo | undefined> {
    const action = `checking ${name} in ${this.location}`;
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.key(name, action) }));
      return { name, size: res.ContentLength ?? 0, ...(res.LastModified ? { modified: res.LastModified.getTime() } : {}) };
    } catch (err) {
      // HEAD answers have no body, so a missing bucket looks like a missing object here.
      if (statusOf(err) === 404) return undefined;
      throw describeS3Error(err, action);
    }
  }

  /** Keys under the folder; a key outside it, or not an object name, or with an impossible size, is reported and skipped. */
  async *list(dir: string): AsyncIterable<ObjectInfo> {
    const action = `listing ${dir} in ${this.location}`;
    const folder = checkFolder(dir, action);
    const under = `${this.prefix}${dir}/`;
    // A server that hands out a token twice would keep a listing going for ever.
    const tokens = new Set<string>();
    let token: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: under, ContinuationToken: token, MaxKeys: this.pageSize }));
      } catch (err) {
        throw describeS3Error(err, action);
      }
      for (const obj of page.Contents ?? []) {
        const key = String(obj.Key ?? '');
        const name = key.startsWith(under) ? key.slice(this.prefix.length) : key;
        if (!key.startsWith(under) || !belongsTo(folder, name)) this.onForeign(name, 'not an object name of a Coffer repository');
        else if (!plausibleSize(name, obj.Size)) this.onForeign(name, `listed with an impossible size (${obj.Size})`);
        else yield { name, size: obj.Size, ...(obj.LastModified ? { modified: obj.LastModified.getTime() } : {}) };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
      if (page.IsTruncated && !token) throw new StoreError('permanent', `${action}: the server says the listing goes on but gives no token to continue it`);
      if (token !== undefined && tokens.has(token)) throw new StoreError('permanent', `${action}: the server answered with a continuation token it gave before; the listing would never end`);
      if (token !== undefined) tokens.add(token);
    } while (token);
  }

  async delete(name: string): Promise<void> {
    const action = `deleting ${name} from ${this.location}`;
    const key = this.key(name, action);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (err) {
      // S3 answers 204 for a missing key; some compatible servers answer 404.
      if (codeOf(err) !== 'NoSuchKey') throw describeS3Error(err, action);
    }
  }

  /**
   * A put killed half-way through a multipart upload leaves its parts billed but invisible; they are
   * aborted once older than `before`. A server that does not implement the listing has none to show.
   */
  async removeIncomplete(before: number): Promise<number> {
    let removed = 0;
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: this.prefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }));
      } catch (err) {
        if (codeOf(err) === 'NotImplemented' || statusOf(err) === 501) return removed;
        throw describeS3Error(err, `listing incomplete uploads in ${this.location}`);
      }
      for (const upload of page.Uploads ?? []) {
        if (!upload.Key || !upload.UploadId || !upload.Initiated || upload.Initiated.getTime() >= before) continue;
        try {
          await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: upload.Key, UploadId: upload.UploadId }));
        } catch (err) {
          if (codeOf(err) !== 'NoSuchUpload') throw describeS3Error(err, `aborting an incomplete upload of ${upload.Key} in ${this.location}`);
        }
        removed++;
      }
      keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      uploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
    } while (keyMarker);
    return removed;
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  /**
   * A URL with which whoever holds it can make one kind of request on one object, without the
   * credentials: how a write-only agent reads and adds objects. A PUT URL carries If-None-Match: *
   * in its signature, so on servers that honour it the URL cannot overwrite an existing object.
   */
  async presign(method: 'GET' | 'PUT', name: string, expiresInSeconds: number): Promise<{ url: string; headers: Record<string, string> }> {
    const { getSignedUrl } = await import('@aws-sdk/s3-request-presigner');
    const params = { Bucket: this.bucket, Key: this.key(name, `signing a ${method} of ${name} in ${this.location}`) };
    if (method === 'GET') return { url: await getSignedUrl(this.client, new GetObjectCommand(params), { expiresIn: expiresInSeconds }), headers: {} };
    const url = await getSignedUrl(this.client, new PutObjectCommand({ ...params, IfNoneMatch: '*' }), { expiresIn: expiresInSeconds, signableHeaders: new Set(['if-none-match']) });
    return { url, headers: { 'if-none-match': '*' } };
  }
}

/** A response body as the SDK hands it over in Node (a Readable). */
type BodyStream = AsyncIterable<Uint8Array> & { destroy?: () => void };

/**
 * Bytes [skip, skip + length) of a body, holding no more than `length` of them; stops reading as soon
 * as it has them. `received` counts every byte read, `ended` says whether the body ended by itself.
 */
async function readBody(body: BodyStream, skip: number, length: number): Promise<{ bytes: Buffer; received: number; ended: boolean }> {
  const parts: Uint8Array[] = [];
  let kept = 0;
  let received = 0;
  for await (const chunk of body) {
    const from = Math.max(0, skip - received);
    received += chunk.length;
    if (from < chunk.length) {
      const piece = chunk.subarray(from, from + (length - kept));
      parts.push(piece);
      kept += piece.length;
    }
    if (kept === length) return { bytes: Buffer.concat(parts, kept), received, ended: false };
  }
  return { bytes: Buffer.concat(parts, kept), received, ended: true };
}

/** Where in the object an answer to a range request starts, from its Content-Range (0 without one). */
function answerStart(contentRange: string | undefined, action: string): number {
  if (!contentRange) return 0;
  const start = Number(/^bytes (\d+)-/.exec(contentRange)?.[1] ?? NaN);
  if (!Number.isSafeInteger(start)) throw new StoreError('permanent', `${action}: the server answered with an unreadable Content-Range '${contentRange.slice(0, 80)}'`);
  return start;
}

function shortAnswer(action: string, received: number, declared: number): StoreError {
  return new StoreError('transient', `${action}: the connection ended after ${received} of ${declared} bytes`);
}

function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

/** The S3 error code ('NoSuchKey', 'SlowDown', …) or, for errors below HTTP, Node's ('ECONNRESET', …). */
function codeOf(err: unknown): string | undefined {
  const e = err as { Code?: string; code?: string; name?: string };
  return e.Code ?? e.code ?? e.name;
}

const DENIED_CODES = new Set(['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'ExpiredToken', 'InvalidToken', 'AccountProblem', 'AllAccessDisabled']);
const TRANSIENT_CODES = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'RequestTimeout',
  'RequestTimeTooSkewed',
  'InternalError',
  'ServiceUnavailable',
  'TimeoutError',
  // Node's network errors; 'socket hang up' is ECONNRESET.
  ...NETWORK_ERROR_CODES,
]);
const NO_SPACE_CODES = new Set(['XMinioStorageFull', 'QuotaExceeded']);

const SET_CREDENTIALS = 'set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE to use a profile of ~/.aws/credentials or ~/.aws/config';

/** The SDK's credential chain found nothing, or a profile it was sent to is unusable. */
function describeCredentialsError(err: unknown, location: string, profile?: string): StoreError {
  if (err instanceof StoreError) return err;
  const message = ((err as Error).message ?? String(err)).replace(/\s+/g, ' ').trim();
  if (/Could not load credentials from any providers/i.test(message)) {
    const found = profile
      ? `no S3 credentials found for the profile ${profile} of AWS_PROFILE (no such profile in ~/.aws/credentials or ~/.aws/config, or one without keys)`
      : 'no S3 credentials found';
    return new StoreError('denied', `${location}: ${found}; ${SET_CREDENTIALS} (an instance or container role is used when there is one)`, { cause: err });
  }
  return new StoreError('denied', `${location}: cannot get S3 credentials (${message}); ${SET_CREDENTIALS}`, { cause: err });
}

/** Turns an SDK or network error into a one-line StoreError that names the action and location. */
/**
 * The client as lib-storage's Upload uses it, with `signal` on the requests that carry the object's
 * bytes: Upload.abort() alone stops further parts but lets those under way run to their end.
 */
function cutOff(client: S3Client, signal: AbortSignal): S3Client {
  const send = (command: unknown, options?: object): Promise<unknown> =>
    (client.send as (command: unknown, options?: object) => Promise<unknown>)(command, command instanceof PutObjectCommand || command instanceof UploadPartCommand ? { ...options, abortSignal: signal } : options);
  return new Proxy(client, { get: (target, key) => (key === 'send' ? send : Reflect.get(target, key, target)) });
}

export function describeS3Error(err: unknown, action: string): StoreError {
  if (err instanceof StoreError) return err;
  const tlsError = describeTlsError(err, action);
  if (tlsError) return tlsError;
  if ((err as Error).name === 'CredentialsProviderError') return describeCredentialsError(err, action);
  const status = statusOf(err);
  const code = codeOf(err) ?? 'Error';
  const message = ((err as Error).message ?? String(err)).replace(/\s+/g, ' ').trim();
  // Answers without a body (HEAD) come back with the message 'UnknownError'; the status says more.
  const detail = `${code}${status ? `, HTTP ${status}` : ''}${message && message !== 'UnknownError' && message !== code ? `: ${message}` : ''}`;
  const options = { cause: err };
  if (code === 'NoSuchBucket') return new StoreError('permanent', `${action}: the bucket does not exist`, options);
  if (code === 'NoSuchKey' || status === 404) return new StoreError('not-found', `${action}: not found`, options);
  if (DENIED_CODES.has(code) || status === 401 || status === 403) {
    return new StoreError('denied', `${action}: access denied (${detail}); check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the profile of AWS_PROFILE) and the bucket's permissions`, options);
  }
  if (NO_SPACE_CODES.has(code) || status === 507) return new StoreError('no-space', `${action}: the storage is full (${detail})`, options);
  if (TRANSIENT_CODES.has(code) || status === 429 || (status !== undefined && status >= 500 && status !== 501)) {
    return new StoreError('transient', `${action}: ${detail}`, options);
  }
  return new StoreError('permanent', `${action}: ${detail}`, options);
}
