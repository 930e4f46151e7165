// What a shard of a scaled-out backup is. The sources are cut into parts; a part is either a whole
// source, or a half-open range of names [from, to) of the entries of a split directory (a directory too
// big for one part, whose tree the merge builds from the shards' trees). The split directories of a plan
// are listed once; an entry of a split directory that is itself a split directory (and still a directory
// we enter) belongs to no range: its own ranges cover it. Everything else below a split directory falls
// in exactly one range, so the parts of all shards cover the sources once, whatever was added or removed
// since the split was made.
//
// Shards travel through the job queue as JSON. Names are raw bytes: one that is valid UTF-8 is written as
// a string, any other as {"base64": …}. A shard from the queue is untrusted: decodeShard checks every path
// and name before anything is walked.
import type { MissingPart } from '../../format/snapshot.ts';

export interface SourcePart {
  readonly kind: 'source';
  /** One of the backup's source paths (absolute, as resolved by the backup). */
  readonly path: string;
}

export interface RangePart {
  readonly kind: 'range';
  /** The split directory (absolute, raw bytes). */
  readonly dir: Buffer;
  /** First name of the range (inclusive); absent: from the first entry. */
  readonly from?: Buffer;
  /** End of the range (exclusive); absent: to the last entry. */
  readonly to?: Buffer;
}

export type ShardPart = SourcePart | RangePart;

export interface Shard {
  readonly parts: readonly ShardPart[];
  /** Estimated from the previous snapshot or the scan: what the dashboard shows while it waits. */
  readonly files: number;
  readonly bytes: number;
}

export interface ShardPlan {
  /** The backup's sources (absolute, sorted). */
  readonly paths: readonly string[];
  /** Every split directory of the plan (absolute, raw bytes). */
  readonly split: readonly Buffer[];
  readonly shards: readonly Shard[];
}

/** One shard with what a worker needs of its plan: the sources and the split directories. */
export interface AssignedShard extends Shard {
  readonly paths: readonly string[];
  readonly split: readonly Buffer[];
}

/** The shards of a plan as workers get them. */
export function assignments(plan: ShardPlan): AssignedShard[] {
  return plan.shards.map((shard) => ({ ...shard, paths: plan.paths, split: plan.split }));
}

export function inRange(part: RangePart, name: Buffer): boolean {
  if (part.from && Buffer.compare(name, part.from) < 0) return false;
  return !(part.to && Buffer.compare(name, part.to) >= 0);
}

export class ShardPlanError extends Error {
  override name = 'ShardPlanError';
}

type RawJson = string | { readonly base64: string };

export interface ShardPartJson {
  readonly source?: string;
  readonly dir?: RawJson;
  readonly from?: RawJson;
  readonly to?: RawJson;
}

/** One shard as a job carries it: its parts, and the plan's sources and split directories. */
export interface ShardJson {
  readonly paths: readonly string[];
  readonly split: readonly RawJson[];
  readonly parts: readonly ShardPartJson[];
  readonly files: number;
  readonly bytes: number;
}

const MAX_PARTS = 100_000;
const MAX_NAME_BYTES = 4096;
const MAX_PATH_BYTES = 65_536;

function rawToJson(bytes: Buffer): RawJson {
  const text = bytes.toString('utf8');
  return Buffer.from(text).equals(bytes) ? text : { base64: bytes.toString('base64') };
}

function rawFromJson(value: unknown, what: string): Buffer {
  if (typeof value === 'string') return Buffer.from(value);
  const b64 = (value as { base64?: unknown } | null)?.base64;
  if (typeof value === 'object' && typeof b64 === 'string') {
    if (b64.length > MAX_PATH_BYTES * 2 || !/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) throw new ShardPlanError(`${what} is not valid base64`);
    return Buffer.from(b64, 'base64');
  }
  throw new ShardPlanError(`${what} must be a string or {"base64": …}`);
}

/** How a snapshot names a part it lacks (FORMAT.md, section 11); names that are not UTF-8 show as U+FFFD. */
export function missingOf(part: ShardPart): MissingPart {
  if (part.kind === 'source') return { path: part.path };
  return { dir: part.dir.toString(), ...(part.from ? { from: part.from.toString() } : {}), ...(part.to ? { to: part.to.toString() } : {}) };
}

/** A part in words, control characters escaped (names come from the source tree). */
export function describeMissing(m: MissingPart): string {
  const quote = (text: string): string => (/[\x00-\x1f\x7f]/.test(text) ? JSON.stringify(text) : text);
  if (m.path !== undefined) return quote(m.path);
  const from = m.from !== undefined ? `'${quote(m.from)}'` : 'the first';
  const to = m.to !== undefined ? `before '${quote(m.to)}'` : 'the last';
  return `the entries of ${quote(m.dir ?? '')} from ${from} to ${to}`;
}

export function describePart(part: ShardPart): string {
  return describeMissing(missingOf(part));
}

export function encodeShard(shard: AssignedShard): ShardJson {
  return {
    paths: shard.paths,
    split: shard.split.map(rawToJson),
    parts: shard.parts.map((p) =>
      p.kind === 'source' ? { source: p.path } : { dir: rawToJson(p.dir), ...(p.from ? { from: rawToJson(p.from) } : {}), ...(p.to ? { to: rawToJson(p.to) } : {}) },
    ),
    files: shard.files,
    bytes: shard.bytes,
  };
}

function checkName(name: Buffer, what: string): Buffer {
  if (name.length === 0 || name.length > MAX_NAME_BYTES || name.includes(0x2f) || name.includes(0) || name.equals(Buffer.from('.')) || name.equals(Buffer.from('..'))) {
    throw new ShardPlanError(`${what} is not a valid file name`);
  }
  return name;
}

function checkAbsolute(p: Buffer, what: string): Buffer {
  if (p.length === 0 || p.length > MAX_PATH_BYTES || p[0] !== 0x2f || p.includes(0)) throw new ShardPlanError(`${what} is not an absolute path`);
  if (p.length > 1) for (const part of p.subarray(1).toString('latin1').split('/')) checkName(Buffer.from(part, 'latin1'), `${what} has a component that`);
  return p;
}

/** Whether `p` is `root` or lies below it (raw absolute paths). */
export function isAtOrBelow(p: Buffer, root: Buffer): boolean {
  if (root.length === 1) return true;
  return p.equals(root) || (p.length > root.length && p.subarray(0, root.length).equals(root) && p[root.length] === 0x2f);
}

/**
 * Reads a shard from the queue (untrusted): sources absolute and sorted, every directory absolute with no
 * '.', '..' or empty component and inside a source, every name a valid file name, at most 100 000 parts
 * and split directories.
 */
export function decodeShard(value: unknown): AssignedShard {
  const json = value as Partial<ShardJson> | null;
  if (typeof json !== 'object' || json === null || !Array.isArray(json.parts) || !Array.isArray(json.paths) || !Array.isArray(json.split)) {
    throw new ShardPlanError('a shard must have its sources, split directories and parts');
  }
  if (json.parts.length === 0 || json.parts.length > MAX_PARTS || json.split.length > MAX_PARTS || json.paths.length === 0 || json.paths.length > MAX_PARTS) {
    throw new ShardPlanError(`a shard must have 1 to ${MAX_PARTS} sources and parts, and at most ${MAX_PARTS} split directories`);
  }
  const paths = json.paths.map((p, i) => {
    if (typeof p !== 'string') throw new ShardPlanError(`source ${i + 1} of the shard is not a path`);
    return checkAbsolute(Buffer.from(p), `source ${i + 1} of the shard`).toString();
  });
  const roots = paths.map((p) => Buffer.from(p));
  const inside = (dir: Buffer, what: string): Buffer => {
    checkAbsolute(dir, what);
    if (!roots.some((root) => isAtOrBelow(dir, root))) throw new ShardPlanError(`${what} (${dir.toString()}) is not inside a source of the backup`);
    return dir;
  };
  const split = json.split.map((d, i) => inside(rawFromJson(d, `split directory ${i + 1}`), `split directory ${i + 1}`));
  const parts = json.parts.map((p: ShardPartJson | null, i): ShardPart => {
    const what = `part ${i + 1} of the shard`;
    if (typeof p !== 'object' || p === null) throw new ShardPlanError(`${what} is not an object`);
    if (p.source !== undefined) {
      if (typeof p.source !== 'string' || !paths.includes(p.source)) throw new ShardPlanError(`${what} names a source the backup does not have`);
      return { kind: 'source', path: p.source };
    }
    const dir = inside(rawFromJson(p.dir, `${what}'s dir`), `${what}'s dir`);
    if (!split.some((d) => d.equals(dir))) throw new ShardPlanError(`${what} is a range of ${dir.toString()}, which is not a split directory`);
    return {
      kind: 'range',
      dir,
      ...(p.from !== undefined ? { from: checkName(rawFromJson(p.from, `${what}'s from`), `${what}'s from`) } : {}),
      ...(p.to !== undefined ? { to: checkName(rawFromJson(p.to, `${what}'s to`), `${what}'s to`) } : {}),
    };
  });
  const count = (n: unknown): number => (typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : 0);
  return { paths, split, parts, files: count(json.files), bytes: count(json.bytes) };
}
