// The repository's `config` object: plain JSON, written once at init, identical on every replica.
import crypto from 'node:crypto';
import { FormatError } from './bytes.ts';
import { DEFAULT_CHUNKER, type ChunkerParams } from './chunker.ts';

export const FORMAT_VERSION = 1;

export interface RepoConfig {
  readonly format: 'coffer';
  readonly version: number;
  /** Random 256-bit repository id (hex). */
  readonly id: string;
  readonly created: string;
  readonly chunker: ChunkerParams & { readonly algorithm: 'fastcdc-gear32' };
}

export function newConfig(now = new Date()): RepoConfig {
  return {
    format: 'coffer',
    version: FORMAT_VERSION,
    id: crypto.randomBytes(32).toString('hex'),
    created: now.toISOString(),
    chunker: { algorithm: 'fastcdc-gear32', ...DEFAULT_CHUNKER },
  };
}

export function encodeConfig(config: RepoConfig): Buffer {
  return Buffer.from(JSON.stringify(config, null, 2) + '\n');
}

export class UnsupportedVersionError extends Error {
  override name = 'UnsupportedVersionError';
}

export function decodeConfig(bytes: Uint8Array): RepoConfig {
  let c: RepoConfig;
  try {
    c = JSON.parse(Buffer.from(bytes).toString('utf8')) as RepoConfig;
  } catch {
    throw new FormatError('repository config is not valid JSON');
  }
  if (typeof c !== 'object' || c === null || c.format !== 'coffer' || !Number.isInteger(c.version)) {
    throw new FormatError('not a Coffer repository config');
  }
  if (c.version > FORMAT_VERSION) {
    throw new UnsupportedVersionError(`repository format version ${c.version} is newer than this Coffer supports (${FORMAT_VERSION}); upgrade Coffer`);
  }
  const ch = c.chunker;
  if (!/^[0-9a-f]{64}$/.test(c.id) || ch?.algorithm !== 'fastcdc-gear32' || !(ch.min > 0 && ch.min < ch.avg && ch.avg < ch.max)) {
    throw new FormatError('repository config is damaged');
  }
  return c;
}
