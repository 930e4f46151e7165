// Which entries one shard's walk records. Outside split directories a shard records everything below
// the parts it holds. In a split directory it records the entries in its ranges, and goes into a split
// sub-directory (still a directory it may enter) only if one of its parts lies at or below it. The
// directories above its parts are walked too, so its root tree holds them: the merge (merge.ts) unites
// the shards' trees into the tree a single walk would have made.
import type { SourceEntry } from '../backup/source-walk.ts';
import { inRange, type AssignedShard, type RangePart } from './shard-plan.ts';

const key = (p: Buffer | string): string => (typeof p === 'string' ? Buffer.from(p) : p).toString('latin1');

export class ShardScope {
  private readonly split: Set<string>;
  private readonly ranges = new Map<string, RangePart[]>();
  private readonly sources: Set<string>;
  /** Every directory at or above one of the shard's parts. */
  private readonly leadsToParts = new Set<string>();

  constructor(shard: Pick<AssignedShard, 'split' | 'parts'>) {
    this.split = new Set(shard.split.map(key));
    this.sources = new Set();
    for (const part of shard.parts) {
      const anchor = part.kind === 'source' ? Buffer.from(part.path) : part.dir;
      if (part.kind === 'source') this.sources.add(key(anchor));
      else {
        const list = this.ranges.get(key(anchor)) ?? [];
        list.push(part);
        this.ranges.set(key(anchor), list);
      }
      let at = key(anchor);
      for (;;) {
        this.leadsToParts.add(at);
        if (at === '/') break;
        const cut = at.lastIndexOf('/');
        at = cut <= 0 ? '/' : at.slice(0, cut);
      }
    }
  }

  isSplit(dir: Buffer): boolean {
    return this.split.has(key(dir));
  }

  /** Whether a directory above the sources (or a split source) is on the way to the shard's parts. */
  leadsTo(dir: Buffer | string): boolean {
    return this.leadsToParts.has(key(dir));
  }

  /**
   * Whether the shard records a source. A split source no longer a directory it enters is recorded by
   * the shard that holds its first range, as a single walk would record it.
   */
  keepsSource(source: Buffer, enters: boolean): boolean {
    if (this.sources.has(key(source))) return true;
    if (!this.split.has(key(source))) return false;
    return enters ? this.leadsTo(source) : (this.ranges.get(key(source))?.some((r) => r.from === undefined) ?? false);
  }

  /** Whether the shard records entry `entry` of directory `dir` (`enters`: a directory the walk goes into). */
  keeps(dir: Buffer, entry: SourceEntry, enters: boolean): boolean {
    if (!this.split.has(key(dir))) return true;
    if (enters && this.split.has(key(entry.path))) return this.leadsTo(entry.path);
    return this.ranges.get(key(dir))?.some((r) => inRange(r, entry.name)) ?? false;
  }
}
