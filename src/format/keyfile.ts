// Key files (`keys/<id>`): the master keys wrapped by one passphrase. The wrapping key is
// Argon2id(passphrase, random salt); a repository may hold many key files, one per passphrase.
import crypto from 'node:crypto';
import { FormatError } from './bytes.ts';
import { AuthenticationError, KEY_BYTES, NONCE_BYTES, aeadOpen, aeadSeal, type MasterKeys } from './crypto.ts';

export interface KdfParams {
  readonly algorithm: 'argon2id';
  /** Memory in KiB. */
  readonly memory: number;
  readonly passes: number;
  readonly parallelism: number;
  /** Base64 of a random 16-byte salt. */
  readonly salt: string;
}

export interface KeyFile {
  readonly version: 1;
  readonly created: string;
  readonly host: string;
  readonly user: string;
  readonly kdf: KdfParams;
  readonly nonce: string;
  /** Base64 of AES-256-GCM(ciphertext || tag) of the master keys' JSON. */
  readonly data: string;
}

/** RFC 9106's second recommended setting: 64 MiB, 3 passes, 4 lanes (~0.3 s here). */
export const DEFAULT_KDF = { algorithm: 'argon2id', memory: 64 * 1024, passes: 3, parallelism: 4 } as const;
const AAD = Buffer.from('coffer key v1');

/** Argon2id on libuv's thread pool, so progress output and signals are still handled meanwhile. */
function wrappingKey(passphrase: string, kdf: KdfParams): Promise<Buffer> {
  const params = {
    message: Buffer.from(passphrase, 'utf8'),
    nonce: Buffer.from(kdf.salt, 'base64'),
    memory: kdf.memory,
    passes: kdf.passes,
    parallelism: kdf.parallelism,
    tagLength: KEY_BYTES,
  };
  return new Promise((resolve, reject) => crypto.argon2('argon2id', params, (err, key) => (err ? reject(err) : resolve(key))));
}

export async function wrapKeys(keys: MasterKeys, passphrase: string, who: { host: string; user: string }, now = new Date()): Promise<KeyFile> {
  const kdf: KdfParams = { ...DEFAULT_KDF, salt: crypto.randomBytes(16).toString('base64') };
  const nonce = crypto.randomBytes(NONCE_BYTES);
  const plain = Buffer.from(
    JSON.stringify({ dataKey: keys.dataKey.toString('base64'), idKey: keys.idKey.toString('base64'), chunkerSeed: keys.chunkerSeed.toString('base64') }),
  );
  const sealed = aeadSeal(await wrappingKey(passphrase, kdf), nonce, AAD, plain);
  return { version: 1, created: now.toISOString(), host: who.host, user: who.user, kdf, nonce: nonce.toString('base64'), data: sealed.toString('base64') };
}

export function encodeKeyFile(file: KeyFile): Buffer {
  return Buffer.from(JSON.stringify(file, null, 2) + '\n');
}

/** Work of one key derivation, in KiB of memory times passes. */
export function kdfCost(kdf: Pick<KdfParams, 'memory' | 'passes'>): number {
  return kdf.memory * kdf.passes;
}

/** The most work a key file may ask for: 2 GiB × 2 passes or 64 MiB × 64 passes, some twenty times the default's. */
export const MAX_KDF_COST = 4 * 1024 * 1024;
const MAX_MEMORY_KIB = 2 * 1024 * 1024;
const MAX_PASSES = 64;
const MAX_LANES = 16;
const MAX_TEXT = 1024;
/** The wrapped master keys: their JSON (three base64 keys) and the tag, well under this. */
const MAX_WRAPPED = 512;

function isText(value: unknown, max = MAX_TEXT): value is string {
  return typeof value === 'string' && value.length <= max;
}

function inRange(value: unknown, min: number, max: number): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= min && value <= max;
}

/** Base64 of `min` to `max` bytes, checked before it is decoded (a string of gigabytes never is). */
function base64(value: unknown, min: number, max: number): Buffer | undefined {
  if (typeof value !== 'string' || value.length > Math.ceil(max / 3) * 4 || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) return undefined;
  const bytes = Buffer.from(value, 'base64');
  return bytes.length >= min && bytes.length <= max ? bytes : undefined;
}

/** A key file, every field type-checked and bounded; a malformed one is a FormatError naming the field. */
export function decodeKeyFile(bytes: Uint8Array, what: string): KeyFile {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new FormatError(`${what} is not valid JSON`);
  }
  const k = value as Record<string, unknown> | null;
  if (typeof k !== 'object' || k === null || Array.isArray(k) || k.version !== 1) throw new FormatError(`${what} is not a Coffer key file`);
  const bad = (field: string): never => {
    throw new FormatError(`${what} is not a usable key file: its ${field} is missing or malformed`);
  };
  for (const field of ['created', 'host', 'user'] as const) if (!isText(k[field])) bad(field);
  const kdf = k.kdf as Record<string, unknown> | null;
  if (typeof kdf !== 'object' || kdf === null || kdf.algorithm !== 'argon2id') bad('kdf');
  if (!base64(kdf!.salt, 8, 64)) bad('kdf.salt');
  if (!base64(k.nonce, NONCE_BYTES, NONCE_BYTES)) bad('nonce');
  if (!base64(k.data, 16 + 1, MAX_WRAPPED)) bad('data');
  // Bounds keep a damaged or hostile key file from asking for gigabytes of memory or minutes of work.
  if (!inRange(kdf!.memory, 8, MAX_MEMORY_KIB) || !inRange(kdf!.passes, 1, MAX_PASSES) || !inRange(kdf!.parallelism, 1, MAX_LANES) || kdfCost(kdf as unknown as KdfParams) > MAX_KDF_COST) {
    throw new FormatError(`${what} has unreasonable KDF parameters`);
  }
  return k as unknown as KeyFile;
}

/** Unwraps the master keys; throws AuthenticationError when the passphrase does not fit this key file. */
export async function unwrapKeys(file: KeyFile, passphrase: string, what: string): Promise<MasterKeys> {
  const plain = aeadOpen(await wrappingKey(passphrase, file.kdf), Buffer.from(file.nonce, 'base64'), AAD, Buffer.from(file.data, 'base64'), what);
  let parsed: Record<string, string>;
  try {
    parsed = JSON.parse(plain.toString('utf8'));
  } catch {
    throw new AuthenticationError(`${what} holds damaged key material`);
  }
  const field = (name: string): Buffer => {
    const b = Buffer.from(parsed[name] ?? '', 'base64');
    if (b.length !== KEY_BYTES) throw new FormatError(`${what} holds a damaged ${name}`);
    return b;
  };
  return { dataKey: field('dataKey'), idKey: field('idKey'), chunkerSeed: field('chunkerSeed') };
}
