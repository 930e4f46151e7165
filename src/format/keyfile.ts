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

export function decodeKeyFile(bytes: Uint8Array, what: string): KeyFile {
  let k: KeyFile;
  try {
    k = JSON.parse(Buffer.from(bytes).toString('utf8')) as KeyFile;
  } catch {
    throw new FormatError(`${what} is not valid JSON`);
  }
  const kdf = k?.kdf;
  if (k?.version !== 1 || kdf?.algorithm !== 'argon2id' || typeof k.data !== 'string' || typeof k.nonce !== 'string') {
    throw new FormatError(`${what} is not a Coffer key file`);
  }
  // Bounds keep a damaged or hostile key file from asking for terabytes of memory.
  if (!(kdf.memory >= 8 && kdf.memory <= 4 * 1024 * 1024 && kdf.passes >= 1 && kdf.passes <= 64 && kdf.parallelism >= 1 && kdf.parallelism <= 64)) {
    throw new FormatError(`${what} has unreasonable KDF parameters`);
  }
  return k;
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
