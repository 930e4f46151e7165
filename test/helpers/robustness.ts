// The random-action model of the robustness suite: two or three writer processes at a time run backups,
// forgets, prunes, restores and checks against one repository (local, S3, SFTP replicas), while a model
// tracks which snapshots exist and what each must restore to. After every step every invariant is
// checked: the repository checks clean with all data read, the snapshots are exactly the model's, every
// one reads back byte for byte, and no marker is left. `npm test` runs a few steps; bench/robustness.ts
// runs many.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { runCheck } from '../../src/engine/check.ts';
import { Repository } from '../../src/repo/repository.ts';
import { WRITERS_DIR } from '../../src/store/layout.ts';
import type { Store } from '../../src/store/store.ts';
import { cofferAsync, jsonLines, ok, PASSWORD, type RunResult } from './cli.ts';
import { snapshotContent } from './lifecycle.ts';
import { seededBytes } from './tree.ts';

export type Action = 'backup' | 'forget' | 'prune' | 'restore' | 'check';

export interface ModelOptions {
  readonly seed: number;
  readonly steps: number;
  /** Processes running at once in each step (2 or 3). */
  readonly writers: number;
  /** Replicas of the repository. */
  readonly locations: readonly string[];
  readonly env: Record<string, string>;
  /** A scratch directory (sources, restores). */
  readonly dir: string;
  readonly openStore: (location: string) => Store;
  readonly log?: (line: string) => void;
}

export interface ModelReport {
  readonly steps: number;
  readonly actions: Record<Action, number>;
  readonly snapshots: number;
  readonly refusedPrunes: number;
}

/** mulberry32: a small seeded generator, so a failing run can be replayed from its seed. */
function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Path → SHA-256, for every file below `root`, keyed as a snapshot names them: by the source's full
 * path without its leading '/' (`source`, where a restore put it below `root`).
 */
function digestTree(root: string, source = root): Map<string, string> {
  const out = new Map<string, string>();
  const base = source.slice(1);
  const walk = (dir: string, rel: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const abs = path.join(dir, e.name);
      if (e.isDirectory()) walk(abs, `${rel}/${e.name}`);
      else out.set(`${rel}/${e.name}`, crypto.hash('sha256', fs.readFileSync(abs)));
    }
  };
  walk(root, base);
  return out;
}

function same(a: Map<string, string>, b: Map<string, string>): boolean {
  return a.size === b.size && [...a].every(([k, v]) => b.get(k) === v);
}

function describe(r: RunResult): string {
  return `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}\nstdout: ${r.stdout.slice(-2000)}\nstderr: ${r.stderr.slice(-2000)}`;
}

export async function runModel(o: ModelOptions): Promise<ModelReport> {
  const random = generator(o.seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const log = o.log ?? (() => {});
  const repos = o.locations.flatMap((l) => ['--repo', l]);
  const hosts = Array.from({ length: o.writers }, (_, i) => `host${i}`);
  const sources = hosts.map((h) => path.join(o.dir, `src-${h}`));
  // Content shared between hosts: deduplicated across writers, so one host's forget and prune meet
  // another's backup of the same blobs.
  const shared = Array.from({ length: 8 }, (_, i) => seededBytes(`shared-${o.seed}-${i}`, 2_000 + Math.floor(random() * 400_000)));
  let unique = 0;
  const mutate = (source: string): void => {
    fs.mkdirSync(path.join(source, 'sub'), { recursive: true });
    for (let n = 1 + Math.floor(random() * 3); n > 0; n--) {
      const file = path.join(source, random() < 0.3 ? 'sub' : '', `f${Math.floor(random() * 6)}`);
      const r = random();
      if (r < 0.2) fs.rmSync(file, { force: true });
      else if (r < 0.6) fs.writeFileSync(file, pick(shared));
      else fs.writeFileSync(file, seededBytes(`unique-${o.seed}-${unique++}`, 1 + Math.floor(random() * 300_000)));
    }
  };
  for (const s of sources) mutate(s);

  ok(['init', ...repos], { env: o.env });
  const model = new Map<string, { host: string; files: Map<string, string> }>();
  const actions: Record<Action, number> = { backup: 0, forget: 0, prune: 0, restore: 0, check: 0 };
  let refusedPrunes = 0;

  for (let step = 0; step < o.steps; step++) {
    const existing = [...model.keys()];
    const running: Promise<void>[] = [];
    const restoring = new Set<string>();
    const forgettingIds = new Set<string>();
    const forgettingHosts = new Set<string>();
    const plan: Action[] = [];
    for (let w = 0; w < o.writers; w++) {
      const weights: [Action, number][] = [['backup', 4], ['forget', 2], ['prune', 2], ['restore', existing.length > 0 ? 2 : 0], ['check', 1]];
      let r = random() * weights.reduce((s, [, n]) => s + n, 0);
      plan.push(weights.find(([, n]) => (r -= n) < 0)![0]);
    }
    // Restores first, so that forgets of the same step leave their snapshots alone.
    plan.sort((a, b) => Number(b === 'restore') - Number(a === 'restore'));
    for (const [w, action] of plan.entries()) {
      actions[action]++;
      const host = hosts[w]!;
      const source = sources[w]!;
      const env = o.env;
      const run = (args: string[]) => cofferAsync(args, { env }).done;
      switch (action) {
        case 'backup': {
          mutate(source);
          const expected = digestTree(source);
          running.push(
            run(['backup', ...repos, '--host', host, '--json', source]).then((r) => {
              if (r.code !== 0) throw new Error(`step ${step}: backup on ${host}: ${describe(r)}`);
              const summary = jsonLines(r.stdout).find((l) => l.type === 'summary')!;
              model.set(summary.snapshotId as string, { host, files: expected });
            }),
          );
          break;
        }
        case 'forget': {
          // Two forgets of one step never aim at the same snapshot: the second would find it gone.
          const protectedHosts = new Set([...restoring, ...forgettingIds].map((id) => model.get(id)!.host));
          const candidates = existing.filter((id) => !restoring.has(id) && !forgettingIds.has(id) && !forgettingHosts.has(model.get(id)!.host));
          const byId = random() < 0.4 && candidates.length > 0;
          const target = byId ? undefined : pick(hosts.filter((h) => !protectedHosts.has(h) && !forgettingHosts.has(h)));
          if (!byId && target === undefined) break;
          let args: string[];
          if (byId) {
            const id = pick(candidates);
            forgettingIds.add(id);
            args = ['forget', ...repos, id, '--json'];
          } else {
            forgettingHosts.add(target!);
            args = ['forget', ...repos, '--host', target!, '--keep-last', String(1 + Math.floor(random() * 2)), '--json'];
          }
          running.push(
            run(args).then((r) => {
              if (r.code !== 0) throw new Error(`step ${step}: ${args.join(' ')}: ${describe(r)}`);
              for (const g of jsonLines(r.stdout).filter((l) => l.type === 'group')) for (const s of g.remove as { id: string }[]) model.delete(s.id);
            }),
          );
          break;
        }
        case 'prune':
          running.push(
            run(['prune', ...repos, '--max-unused', pick(['0%', '5%', '50%']), '--json']).then((r) => {
              if (r.code === 1 && /another prune is running/.test(r.stderr)) refusedPrunes++;
              else if (r.code !== 0) throw new Error(`step ${step}: prune: ${describe(r)}`);
            }),
          );
          break;
        case 'restore': {
          const id = pick(existing.filter((e) => !restoring.has(e)));
          if (!id) break;
          restoring.add(id);
          const expected = model.get(id)!.files;
          const target = path.join(o.dir, `restore-${step}-${w}`);
          running.push(
            run(['restore', ...repos, id, '--target', target]).then((r) => {
              if (r.code !== 0) throw new Error(`step ${step}: restore ${id}: ${describe(r)}`);
              const from = sources[hosts.indexOf(model.get(id)!.host)]!;
              const got = digestTree(path.join(target, from), from);
              if (!same(got, expected)) throw new Error(`step ${step}: restore ${id} does not match what was backed up`);
              fs.rmSync(target, { recursive: true, force: true });
            }),
          );
          break;
        }
        case 'check':
          running.push(
            run(['check', ...repos]).then((r) => {
              if (r.code !== 0) throw new Error(`step ${step}: check beside ${plan.join(', ')}: ${describe(r)}`);
            }),
          );
          break;
      }
    }
    log(`step ${step}: ${plan.join(', ')}`);
    const results = await Promise.allSettled(running);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    await checkInvariants(o, step, model);
  }
  return { steps: o.steps, actions, snapshots: model.size, refusedPrunes };
}

/** The repository checks clean (all data read), holds exactly the model's snapshots, each restores byte for byte, no marker is left. */
async function checkInvariants(o: ModelOptions, step: number, model: Map<string, { files: Map<string, string> }>): Promise<void> {
  const stores = o.locations.map((l) => o.openStore(l));
  try {
    for (const store of stores) {
      for await (const m of store.list(WRITERS_DIR)) throw new Error(`step ${step}: marker ${m.name} left on ${store.location} after every process ended`);
    }
    const checker = await Repository.open(stores, PASSWORD);
    const result = await runCheck(checker, { readData: { kind: 'all' } });
    if (result.errors.length > 0) throw new Error(`step ${step}: check: ${result.errors.join('; ')}`);
    const reader = await Repository.open(stores, PASSWORD);
    await reader.loadIndex();
    const listed = await reader.listSnapshots();
    const ids = listed.map((s) => s.id).sort();
    const expected = [...model.keys()].sort();
    if (ids.join() !== expected.join()) throw new Error(`step ${step}: snapshots ${ids.map((i) => i.slice(0, 8)).join(',')} but the model has ${expected.map((i) => i.slice(0, 8)).join(',')}`);
    for (const s of listed) {
      const content = await snapshotContent(reader, s);
      const want = model.get(s.id)!.files;
      if (!same(content, want)) throw new Error(`step ${step}: snapshot ${s.id.slice(0, 8)} reads back different from what was backed up`);
    }
  } finally {
    await Promise.all(stores.map((s) => s.close()));
  }
}
