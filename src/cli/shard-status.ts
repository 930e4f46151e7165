// The live status of a scaled-out backup: how many shards are done, which worker runs which shard and how
// far it got, and what waits, with sizes (the estimates of the split).
import type { ShardRunStatus } from '../scale-out/shard-queue.ts';
import { formatBytes } from './format.ts';

/** A worker silent for longer than this is flagged (it loses its shard at the heartbeat timeout). */
const SILENT_MS = 10_000;

export function shardStatusLines(status: ShardRunStatus): string[] {
  const total = status.done + status.failed + status.running.length + status.waiting.length;
  const waitingBytes = status.waiting.reduce((n, w) => n + w.bytes, 0);
  const head = [`shards: ${status.done} of ${total} done`, `${status.running.length} running`, `${status.waiting.length} waiting${status.waiting.length > 0 ? ` (${formatBytes(waitingBytes)})` : ''}`];
  if (status.failed > 0) head.push(`${status.failed} failed`);
  return [
    head.join(', '),
    ...[...status.running]
      .sort((a, b) => a.worker.localeCompare(b.worker))
      .map((r) => {
        const silent = r.silentMs > SILENT_MS ? `, silent for ${Math.round(r.silentMs / 1000)} s` : '';
        const attempt = r.attempt > 1 ? `, attempt ${r.attempt}` : '';
        return `  ${r.worker}: shard ${r.index + 1}, ${formatBytes(r.progress.bytesDone)} of ${formatBytes(r.bytes)} read${attempt}${silent}`;
      }),
  ];
}
