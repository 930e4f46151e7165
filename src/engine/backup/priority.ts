// Which parts of the sources go first. A priority rule gives a path a level (higher first, default 0);
// everything below the path inherits it, and the directories leading to it are visited early so the
// path is reached first. Within a level, small files go before big ones (quick wins), then directories.
import path from 'node:path';
import type { SourceEntry } from './source-walk.ts';

export interface PriorityRule {
  readonly path: string;
  readonly level: number;
}

/** Parses `PATH=LEVEL` (LEVEL an integer, higher first). */
export function parsePriorityRule(text: string): PriorityRule | undefined {
  const m = /^(.+)=(-?\d+)$/.exec(text);
  return m ? { path: path.resolve(m[1]!), level: Number(m[2]) } : undefined;
}

export class Priorities {
  private readonly rules: readonly PriorityRule[];

  constructor(rules: readonly PriorityRule[]) {
    this.rules = rules;
  }

  /** Level of a path: the rule it is under, or the highest rule below it (so the walk heads there first). */
  levelOf(absolute: string): number {
    let level: number | undefined;
    for (const rule of this.rules) {
      const under = absolute === rule.path || absolute.startsWith(`${rule.path}/`);
      const leadsTo = rule.path.startsWith(`${absolute}/`);
      if (under || leadsTo) level = Math.max(level ?? -Infinity, rule.level);
    }
    return level ?? 0;
  }

  /** The order to back up a directory's entries in. */
  order(entries: SourceEntry[]): { entry: SourceEntry; level: number }[] {
    const ranked = entries.map((entry) => ({ entry, level: this.rules.length ? this.levelOf(entry.path.toString()) : 0 }));
    return ranked.sort((a, b) => {
      if (a.level !== b.level) return b.level - a.level;
      const aDir = a.entry.stat.isDirectory();
      if (aDir !== b.entry.stat.isDirectory()) return aDir ? 1 : -1;
      const [x, y] = [a.entry.stat.size, b.entry.stat.size];
      return x < y ? -1 : x > y ? 1 : 0;
    });
  }
}
