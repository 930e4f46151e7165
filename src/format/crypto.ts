// Keys and authenticated encryption. Every encryption in Coffer uses a key used for nothing else:
// HKDF-SHA256(dataKey, random 256-bit salt, purpose). Within one such key, nonces are a counter, so a
// nonce can never repeat under one key whatever crashes or parallel writers do (see docs/FORMAT.md).
import crypto from 'node:crypto';
import { FormatError } from './bytes.ts';

export const KEY_BYTES = 32;
export const SALT_BYTES = 32;
export const TAG_BYTES = 16;
export const NONCE_BYTES = 12;
export const ID_BYTES = 32;

/** The secrets of one repository, shared by all of its passphrases and replicas. */
export interface MasterKeys {
  /** Input of HKDF for every encryption key. */
  readonly dataKey: Buffer;
  /** HMAC-SHA256 key that names blobs (keyed ids: equal content is not recognisable across repositories). */
  readonly idKey: Buffer;
  /** Seed of the chunker's gear table (cut points do not reveal content). */
  readonly chunkerSeed: Buffer;
}

export class AuthenticationError extends Error {
  override name = 'AuthenticationError';
}

export function generateMasterKeys(): MasterKeys {
  return {
    dataKey: crypto.randomBytes(KEY_BYTES),
    idKey: crypto.randomBytes(KEY_BYTES),
    chunkerSeed: crypto.randomBytes(KEY_BYTES),
  };
}

/**
 * Keys are turned into KeyObjects once: handing a raw Buffer to createHmac/createCipheriv builds a new
 * KeyObject on every call, which cost more than hashing a small file.
 */
export function secretKey(raw: Uint8Array): crypto.KeyObject {
  return crypto.createSecretKey(raw);
}

/** Blob id: HMAC-SHA256 of the plaintext under the repository's id key. */
export function blobId(idKey: crypto.KeyObject, plaintext: Uint8Array): Buffer {
  return crypto.createHmac('sha256', idKey).update(plaintext).digest();
}

/** Object names of stored files: SHA-256 of their bytes, so any replica can be checked with sha256sum. */
export function contentId(bytes: Uint8Array): string {
  return crypto.hash('sha256', bytes, 'hex');
}

export type KeyPurpose = 'coffer pack v1' | 'coffer object v1';

export function deriveKey(dataKey: Buffer, salt: Uint8Array, purpose: KeyPurpose): crypto.KeyObject {
  return secretKey(Buffer.from(crypto.hkdfSync('sha256', dataKey, salt, purpose, KEY_BYTES)));
}

/** Nonce number n as 12 big-endian bytes. */
export function counterNonce(n: number): Buffer {
  const nonce = Buffer.alloc(NONCE_BYTES);
  nonce.writeUIntBE(n, NONCE_BYTES - 6, 6);
  return nonce;
}

/** AES-256-GCM; returns ciphertext followed by the 16-byte tag. */
export function aeadSeal(key: crypto.CipherKey, nonce: Buffer, aad: Uint8Array, plaintext: Uint8Array): Buffer {
  const cipher = crypto.createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(aad);
  const head = cipher.update(plaintext);
  const tail = cipher.final();
  return Buffer.concat([head, tail, cipher.getAuthTag()]);
}

export function aeadOpen(key: crypto.CipherKey, nonce: Buffer, aad: Uint8Array, sealed: Uint8Array, what: string): Buffer {
  if (sealed.length < TAG_BYTES) throw new AuthenticationError(`${what} is too short to be encrypted data`);
  const decipher = crypto.createDecipheriv('aes-256-gcm', key, nonce);
  decipher.setAAD(aad);
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
  const head = decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES));
  try {
    // GCM is a stream mode: final() only checks the tag and adds nothing, so the plaintext is not copied again.
    const tail = decipher.final();
    return tail.length === 0 ? head : Buffer.concat([head, tail]);
  } catch {
    throw new AuthenticationError(`${what} fails authentication (damaged or not written with this repository's keys)`);
  }
}

const OBJECT_VERSION = 1;
export type ObjectKind = 'index' | 'snapshot' | 'deletion' | 'writer';

/**
 * Standalone encrypted object (index files, snapshots): version byte, random salt, then AES-256-GCM of the
 * plaintext under HKDF(dataKey, salt) with nonce 0 (the key is used once). The kind is the associated data,
 * so an index can never be read as a snapshot (nor a deletion record as anything else). `salt` is random except in the published test vectors.
 */
export function sealObject(dataKey: Buffer, kind: ObjectKind, plaintext: Uint8Array, salt: Buffer = crypto.randomBytes(SALT_BYTES)): Buffer {
  const key = deriveKey(dataKey, salt, 'coffer object v1');
  return Buffer.concat([Buffer.of(OBJECT_VERSION), salt, aeadSeal(key, counterNonce(0), Buffer.from(kind), plaintext)]);
}

export function openObject(dataKey: Buffer, kind: ObjectKind, stored: Uint8Array, what: string): Buffer {
  if (stored.length < 1 + SALT_BYTES + TAG_BYTES) throw new FormatError(`${what} is truncated`);
  if (stored[0] !== OBJECT_VERSION) throw new FormatError(`${what} has unknown object version ${stored[0]}`);
  const salt = stored.subarray(1, 1 + SALT_BYTES);
  const key = deriveKey(dataKey, salt, 'coffer object v1');
  return aeadOpen(key, counterNonce(0), Buffer.from(kind), stored.subarray(1 + SALT_BYTES), what);
}
