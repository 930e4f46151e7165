// A worker process of a scaled-out backup, forked by the coordinator. It reaches the shard queue over
// the IPC channel (the coordinator's in-process queue) or, given a PostgreSQL URL, through pg-boss. The
// repository's location and its master keys (unwrapped once by the coordinator, so a worker derives no
// key: Argon2id costs some 0.2 CPU-seconds per open) or its passphrase, how to open its stores (the
// plan's bandwidth limits, CA certificates, and credentials from its credentialsCommand) and the URL
// come in the first message, never on the command line or in the environment. Later messages pause and
// resume it.
import { openStoreWith, type StoreEvents, type StoreSettings } from '../store/configured-store.ts';
import { quoteName } from '../format/text.ts';
import { PauseGate } from '../engine/pause-gate.ts';
import { limitHeapsForBackup } from '../node-flags.ts';
import { Repository, type UnlockedKeys } from '../repo/repository.ts';
import { KEY_BYTES } from '../format/crypto.ts';
import { runShardWorker, type ClaimedShard, type ShardProgress, type ShardSource, type ShardWork } from './shard-worker.ts';
import type { ShardOutcome } from '../engine/scale-out/scale-out.ts';
import { PgBoss } from 'pg-boss';
import { PgBossShardSource } from './pg-boss-shard-source.ts';

/** Sent by the coordinator first. */
export interface WorkerSetup {
  readonly type: 'setup';
  readonly locations: readonly string[];
  /** How the worker opens the repository: the master keys the coordinator unwrapped, or else the passphrase. */
  readonly keys?: WorkerKeys;
  readonly password?: string;
  readonly capacity: number;
  readonly heartbeatMs: number;
  readonly chunkWorkers?: number;
  readonly packSize?: number;
  /** The shard queue on PostgreSQL (pg-boss); absent: the coordinator's queue over IPC. */
  readonly postgresUrl?: string;
  /** How the stores are opened, as the plan's backup opens them (absent: plain stores, the environment's credentials). */
  readonly stores?: StoreSettings;
  /** Start paused (the run was paused before this worker started). */
  readonly paused?: boolean;
}

/** A repository's master keys as they cross the IPC channel (base64). */
export interface WorkerKeys {
  readonly dataKey: string;
  readonly idKey: string;
  readonly chunkerSeed: string;
  readonly keyId: string;
}

export function workerKeys({ keys, keyId }: UnlockedKeys): WorkerKeys {
  return { dataKey: keys.dataKey.toString('base64'), idKey: keys.idKey.toString('base64'), chunkerSeed: keys.chunkerSeed.toString('base64'), keyId };
}

function unlockedKeys(k: WorkerKeys): UnlockedKeys {
  const key = (name: 'dataKey' | 'idKey' | 'chunkerSeed'): Buffer => {
    const bytes = Buffer.from(typeof k[name] === 'string' ? k[name] : '', 'base64');
    if (bytes.length !== KEY_BYTES) throw new Error(`the coordinator sent a malformed ${name}`);
    return bytes;
  };
  return { keys: { dataKey: key('dataKey'), idKey: key('idKey'), chunkerSeed: key('chunkerSeed') }, keyId: String(k.keyId) };
}

/** Sent by the coordinator while the worker runs: its job was paused or resumed. */
export interface WorkerPause {
  readonly type: 'pause' | 'resume';
}

export type WorkerRequest =
  | { readonly type: 'claim'; readonly id: number; readonly capacity: number }
  | { readonly type: 'heartbeat'; readonly id: number; readonly claim: string; readonly progress: ShardProgress }
  | { readonly type: 'finish'; readonly id: number; readonly claim: string; readonly outcome: ShardOutcome }
  | { readonly type: 'started'; readonly id: number; readonly claim: string; readonly index: number }
  | { readonly type: 'progress'; readonly id: number; readonly index: number; readonly bytes: number; readonly work: ShardWork };

export interface WorkerReply {
  readonly type: 'reply';
  readonly id: number;
  readonly value: unknown;
}

/** A request before the client numbers it. */
type Unsent = { [K in WorkerRequest['type']]: Omit<Extract<WorkerRequest, { type: K }>, 'id'> }[WorkerRequest['type']];

function ipcSource(): { source: ShardSource; started: (item: ClaimedShard) => void; progress: (item: ClaimedShard, work: ShardWork) => void } {
  let next = 0;
  const waiting = new Map<number, (value: unknown) => void>();
  process.on('message', (m: WorkerReply) => {
    if (m.type !== 'reply') return;
    waiting.get(m.id)?.(m.value);
    waiting.delete(m.id);
  });
  const ask = <T>(request: Unsent): Promise<T> =>
    new Promise<T>((resolve) => {
      const id = next++;
      waiting.set(id, resolve as (value: unknown) => void);
      process.send!({ ...request, id });
    });
  return {
    source: {
      claim: (capacity) => ask<ClaimedShard[]>({ type: 'claim', capacity }),
      heartbeat: (claim, progress) => ask<boolean>({ type: 'heartbeat', claim, progress }),
      finish: (claim, outcome) => ask<void>({ type: 'finish', claim, outcome }),
    },
    started: (item) => process.send!({ type: 'started', id: -1, claim: item.claim, index: item.index }),
    progress: (item, work) => process.send!({ type: 'progress', id: -1, index: item.index, bytes: item.shard.bytes, work }),
  };
}

/** The worker's warnings go to its stderr, which it shares with the coordinator (a terminal, or the daemon's log). */
function warn(message: string): void {
  process.stderr.write(`coffer: shard worker ${process.pid}: warning: ${message}\n`);
}

const storeEvents: StoreEvents = {
  onForeign: (location, name, reason) => warn(`ignoring ${quoteName(name)} in ${location}: ${reason}`),
  onDamaged: (name, reason) => warn(`${reason}; read ${name} from the repository again`),
  onUnusable: warn,
};

async function main(): Promise<void> {
  // This process only backs up: the backup command's heap settings, before any chunk worker starts.
  limitHeapsForBackup();
  const setup = await new Promise<WorkerSetup>((resolve) => process.once('message', (m: WorkerSetup) => resolve(m)));
  const pause = new PauseGate();
  if (setup.paused) pause.pause();
  process.on('message', (m: WorkerPause) => {
    if (m.type === 'pause') pause.pause();
    else if (m.type === 'resume') pause.resume();
  });
  const stop = new AbortController();
  // The coordinator went away (its IPC channel closed): nothing would take the results.
  process.on('disconnect', () => stop.abort());
  const ipc = ipcSource();
  const boss = setup.postgresUrl ? new PgBoss({ connectionString: setup.postgresUrl, max: 2, supervise: false, schedule: false }) : undefined;
  boss?.on('error', () => {});
  await boss?.start();
  const source = boss ? new PgBossShardSource(boss) : ipc.source;
  const started = ipc.started;
  const secret = setup.keys ? unlockedKeys(setup.keys) : setup.password;
  if (secret === undefined) throw new Error('the coordinator sent neither keys nor a passphrase');
  const openRepo = async (): Promise<Repository> => {
    return Repository.open(
      // The worker's stop ends a throttled transfer's wait at once.
      setup.locations.map((l) => openStoreWith(l, { ...setup.stores, signal: stop.signal }, storeEvents)),
      secret,
    );
  };
  await runShardWorker(source, openRepo, {
    capacity: setup.capacity,
    heartbeatMs: setup.heartbeatMs,
    signal: stop.signal,
    pause,
    onStart: started,
    onProgress: ipc.progress,
    run: { ...(setup.chunkWorkers ? { workers: setup.chunkWorkers } : {}), ...(setup.packSize ? { packSize: setup.packSize } : {}) },
  });
  await boss?.stop({ graceful: false });
  // Already gone when the coordinator went away first (its channel closed: that is what stopped us).
  if (process.connected) process.disconnect();
}

main().catch((err: Error) => {
  process.stderr.write(`coffer: shard worker failed: ${err.message}\n`);
  process.exit(1);
});
