// `forget`: removes snapshots, chosen by a retention policy per group or given by id. It writes a
// deletion record naming them on every reachable replica first (so a replica that was offline learns
// of it and none copies them back, docs/FORMAT.md 12.6), then deletes the snapshot objects. Data is
// freed by prune; forget needs no lock and runs beside backups (removing a snapshot can only make a
// prune keep more).
import { whoAmI, type Repository, type StoredSnapshot } from '../repo/repository.ts';
import { sealDeletionRecord } from '../repo/deletion-records.ts';
import { resolveSnapshot, type SnapshotFilter } from '../repo/snapshot-ref.ts';
import type { Store } from '../store/store.ts';
import { applyRetention, isEmptyPolicy, PolicyError, type RetentionPolicy } from './retention.ts';
import { DEFAULT_GROUP_BY, groupSnapshots, parseGroupBy, type GroupField, type GroupKey } from './snapshot-filter.ts';

export interface ForgetOptions {
  /** Snapshots to remove by id (or unique prefix); excludes `policy`. */
  readonly ids?: readonly string[];
  readonly policy?: RetentionPolicy;
  readonly filter?: SnapshotFilter;
  readonly groupBy: readonly GroupField[];
  readonly dryRun?: boolean;
  /**
   * Only snapshots of exactly this host and these paths. `filter.paths` matches snapshots that include
   * the paths, so another plan backing up a superset would be swept in: the daemon's retention after a
   * run passes the host and paths of the snapshot the run made, `forget --plan` the plan's host and
   * the paths its backup records (engine/backup/stream-source.ts snapshotPathsOf).
   */
  readonly sameSourcesAs?: { readonly host: string; readonly paths: readonly string[] };
}

export interface KeptSnapshot {
  readonly snapshot: StoredSnapshot;
  readonly reasons: readonly string[];
}

export interface ForgetGroup {
  readonly key: GroupKey;
  readonly keep: readonly KeptSnapshot[];
  readonly remove: readonly StoredSnapshot[];
}

export interface ReplicaOutcome {
  readonly location: string;
  /** Snapshot objects deleted there (0 when it already lacked them). */
  readonly removed: number;
  readonly error?: string;
}

export interface ForgetResult {
  readonly groups: readonly ForgetGroup[];
  /** Ids removed (or that would be, with dryRun). */
  readonly removed: readonly string[];
  /** The record written, when anything was removed. */
  readonly record?: string;
  readonly replicas: readonly ReplicaOutcome[];
}

/** A plan's `retention` in the configuration file: the policy and how its snapshots are grouped. */
export type PlanRetention = RetentionPolicy & { readonly groupBy?: string };

/**
 * What `forget --plan P` applies (and what a scheduler's retention after a run of P should call): the plan's policy to the
 * plan's own snapshots (its host and its paths), grouped as the plan says (host and paths by default).
 */
export function planForgetOptions(retention: PlanRetention, owner: { host: string; paths: readonly string[] }): ForgetOptions {
  const { groupBy, ...policy } = retention;
  return { policy, filter: { host: owner.host, paths: owner.paths }, groupBy: groupBy === undefined ? [...DEFAULT_GROUP_BY] : parseGroupBy(groupBy) };
}

/** Snapshot ids or a policy, exactly one of them (the CLI asks before it opens the repository). */
export function checkForgetOptions(options: Pick<ForgetOptions, 'ids' | 'policy'>): void {
  if (options.ids?.length) {
    if (options.policy && !isEmptyPolicy(options.policy)) throw new PolicyError('give snapshot ids or a policy (--keep-…), not both');
  } else if (!options.policy || isEmptyPolicy(options.policy)) {
    throw new PolicyError('no policy given: add --keep-last, --keep-daily, --keep-within… (or snapshot ids); forget never removes every snapshot by default');
  }
}

/** What to remove: per group by policy, or the given ids as one group. */
export function planForget(snapshots: readonly StoredSnapshot[], options: ForgetOptions): ForgetGroup[] {
  checkForgetOptions(options);
  if (options.ids?.length) {
    const chosen = new Map(options.ids.map((ref) => resolveSnapshot(snapshots, ref)).map((s) => [s.id, s]));
    return [{ key: {}, keep: [], remove: [...chosen.values()] }];
  }
  const policy = options.policy!;
  const owner = options.sameSourcesAs;
  const own = owner ? snapshots.filter((s) => s.snapshot.host === owner.host && sameSet(s.snapshot.paths, owner.paths)) : snapshots;
  return groupSnapshots(own, options.groupBy, options.filter).map((group) => {
    const decisions = applyRetention(group.snapshots, policy);
    return {
      key: group.key,
      keep: decisions.filter((d) => d.keep).map((d) => ({ snapshot: d.snapshot, reasons: d.reasons })),
      remove: decisions.filter((d) => !d.keep).map((d) => d.snapshot),
    };
  });
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const set = new Set(a);
  return set.size === new Set(b).size && b.every((x) => set.has(x));
}

async function removeFrom(store: Store, names: readonly string[], record: { name: string; bytes: Buffer }): Promise<ReplicaOutcome> {
  try {
    await store.put(record.name, record.bytes);
    let removed = 0;
    for (const name of names) {
      if (!(await store.stat(name))) continue;
      await store.delete(name);
      removed++;
    }
    return { location: store.location, removed };
  } catch (err) {
    return { location: store.location, removed: 0, error: (err as Error).message };
  }
}

/**
 * The ids of `snapshots` and of every snapshot they replace (left by an interrupted `coffer tag`,
 * engine/retag.ts), older versions first followed through their `replaces` chain: listSnapshots hides a
 * replaced snapshot only while the one replacing it is there, so forgetting that one alone would bring
 * the older version back.
 */
async function withReplaced(repo: Repository, snapshots: readonly StoredSnapshot[]): Promise<string[]> {
  const ids = new Set(snapshots.map((s) => s.id));
  for (const s of snapshots) {
    let next = s.snapshot.replaces;
    while (next !== undefined && !ids.has(next)) {
      ids.add(next);
      try {
        next = (await repo.loadSnapshot(`snapshots/${next}`)).replaces;
      } catch {
        // Gone (the interrupted tag's clean-up finished) or unreadable: nothing further to follow.
        next = undefined;
      }
    }
  }
  return [...ids];
}

export async function forgetSnapshots(repo: Repository, options: ForgetOptions): Promise<ForgetResult> {
  const groups = planForget(await repo.listSnapshots(), options);
  const removed = groups.flatMap((g) => g.remove.map((s) => s.id));
  if (options.dryRun || removed.length === 0) return { groups, removed, replicas: [] };
  const doomed = await withReplaced(repo, groups.flatMap((g) => g.remove));
  const record = sealDeletionRecord(repo, {
    timeMs: Date.now(),
    host: whoAmI().host,
    snapshots: doomed.map((id) => Buffer.from(id, 'hex')),
    packs: [],
    indexes: [],
    writers: [],
  });
  const names = doomed.map((id) => `snapshots/${id}`);
  const replicas = [
    ...(await Promise.all(repo.stores.map((store) => removeFrom(store, names, record)))),
    ...repo.unavailable.map((u) => ({ location: u.store.location, removed: 0, error: `unreachable: ${u.error.message}` })),
  ];
  repo.reloadDeletionRecords();
  return { groups, removed, record: record.name, replicas };
}
