// The repository's `config` object: plain JSON, written once at init, identical on every replica. It is
// read before the passphrase has opened anything, so it is checked field by field and its chunker
// parameters are bounded; once the master keys are unlocked its MAC proves that nobody without them
// changed it (docs/FORMAT.md section 3, docs/SECURITY.md).
import crypto from 'node:crypto';
import { FormatError } from './bytes.ts';
import { DEFAULT_CHUNKER, type ChunkerParams } from './chunker.ts';
import { MAX_CHUNK_BYTES } from './limits.ts';

export const FORMAT_VERSION = 1;

export interface RepoConfig {
  readonly format: 'coffer';
  readonly version: number;
  /** Random 256-bit repository id (hex). */
  readonly id: string;
  readonly created: string;
  readonly chunker: ChunkerParams & { readonly algorithm: 'fastcdc-gear32' };
  /** HMAC-SHA256 (hex) of every other field under a key derived from the master keys; repositories made by 0.1.0 have none. */
  readonly mac?: string;
}

/** Chunks smaller than this would make the index huge for nothing. */
const MIN_CHUNK_MIN = 64 * 1024;
const MAC_INFO = 'coffer config mac v1';
const HEX_ID = /^[0-9a-f]{64}$/;

/** A new repository's config, with its MAC under `dataKey`. */
export function newConfig(dataKey: Buffer, now = new Date()): RepoConfig {
  const config = {
    format: 'coffer',
    version: FORMAT_VERSION,
    id: crypto.randomBytes(32).toString('hex'),
    created: now.toISOString(),
    chunker: { algorithm: 'fastcdc-gear32', ...DEFAULT_CHUNKER },
  } as const;
  return { ...config, mac: configMac(config, dataKey) };
}

export function encodeConfig(config: RepoConfig): Buffer {
  return Buffer.from(JSON.stringify(config, null, 2) + '\n');
}

export class UnsupportedVersionError extends Error {
  override name = 'UnsupportedVersionError';
}

/** JSON with object keys sorted at every level and no white space: the bytes the MAC covers. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    return `{${entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** HMAC-SHA256 of the canonical JSON of every field but `mac`, under HKDF-SHA256(dataKey, no salt, "coffer config mac v1"). */
export function configMac(config: Omit<RepoConfig, 'mac'> & { mac?: unknown }, dataKey: Buffer): string {
  const { mac: _mac, ...fields } = config;
  const key = Buffer.from(crypto.hkdfSync('sha256', dataKey, Buffer.alloc(0), MAC_INFO, 32));
  return crypto.createHmac('sha256', key).update(canonicalJson(fields)).digest('hex');
}

export type ConfigVerdict = 'authentic' | 'legacy' | 'tampered';

/**
 * Whether the config is what the holder of `dataKey` wrote. A config without a MAC (Coffer 0.1.0) is
 * accepted only with the chunker parameters 0.1.0 always wrote, so stripping the MAC gains nothing.
 */
export function verifyConfig(config: RepoConfig, dataKey: Buffer): ConfigVerdict {
  if (config.mac === undefined) {
    const { min, avg, max } = config.chunker;
    return min === DEFAULT_CHUNKER.min && avg === DEFAULT_CHUNKER.avg && max === DEFAULT_CHUNKER.max ? 'legacy' : 'tampered';
  }
  const expected = Buffer.from(configMac(config, dataKey), 'hex');
  return crypto.timingSafeEqual(expected, Buffer.from(config.mac, 'hex')) ? 'authentic' : 'tampered';
}

function isSize(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0;
}

export function decodeConfig(bytes: Uint8Array): RepoConfig {
  let c: Record<string, unknown>;
  try {
    c = JSON.parse(Buffer.from(bytes).toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new FormatError('repository config is not valid JSON');
  }
  if (typeof c !== 'object' || c === null || Array.isArray(c) || c.format !== 'coffer' || !Number.isSafeInteger(c.version) || (c.version as number) < 1) {
    throw new FormatError('not a Coffer repository config');
  }
  if ((c.version as number) > FORMAT_VERSION) {
    throw new UnsupportedVersionError(`repository format version ${c.version} is newer than this Coffer supports (${FORMAT_VERSION}); upgrade Coffer`);
  }
  const damaged = (what: string): never => {
    throw new FormatError(`repository config is damaged: ${what}`);
  };
  if (typeof c.id !== 'string' || !HEX_ID.test(c.id)) damaged('its id is not 64 hex digits');
  if (typeof c.created !== 'string' || c.created.length > 64) damaged('its creation time is malformed');
  if (c.mac !== undefined && (typeof c.mac !== 'string' || !HEX_ID.test(c.mac))) damaged('its MAC is not 64 hex digits');
  const ch = c.chunker as Record<string, unknown> | null;
  if (typeof ch !== 'object' || ch === null || ch.algorithm !== 'fastcdc-gear32') damaged('unknown chunker');
  const { min, avg, max } = ch!;
  // Bounded whatever the MAC says: a chunker that cuts every 16 bytes, or allocates 2^45, is refused.
  if (!isSize(min) || !isSize(avg) || !isSize(max) || !Number.isInteger(Math.log2(avg)) || !(MIN_CHUNK_MIN <= min && min < avg && avg < max && max <= MAX_CHUNK_BYTES)) {
    damaged(`chunker sizes ${min}/${avg}/${max} are out of bounds (${MIN_CHUNK_MIN} ≤ min < avg < max ≤ ${MAX_CHUNK_BYTES}, avg a power of two)`);
  }
  return c as unknown as RepoConfig;
}
