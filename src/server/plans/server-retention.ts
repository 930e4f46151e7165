// A plan's retention on the server's own S3 destinations. Agents may only add there (write-only, issue
// 13), so when the plan's owner gave the server the repository's passphrase (plan-passphrase.ts) the
// server applies it after each completed backup: with its own credentials, under the user's prefix (the
// store the broker signs for), with the daemon's step (daemon/plan-retention.ts). It runs as a task on
// the server's queue, so with several servers it runs once; a backup of the same repository may run
// meanwhile, which the format allows: prune respects the writer markers the agent leaves through its
// pre-signed uploads (docs/FORMAT.md 12), and forget only ever adds a deletion record and removes the
// snapshots it names.
import type { BackupParams, LogLine } from '../../agent/protocol.ts';
import { applyPlanRetention, type RetentionLog } from '../../daemon/plan-retention.ts';
import { Repository, WrongPassphraseError } from '../../repo/repository.ts';
import { resolveSnapshot } from '../../repo/snapshot-ref.ts';
import { RetryStore } from '../../store/retry.ts';
import type { ServerContext } from '../context.ts';
import { announceJob, appendLog, recordRetention } from '../jobs/lifecycle.ts';
import { openServerStore } from '../storage/destinations.ts';
import { planPassphrase } from './plan-passphrase.ts';
import { destinationsOf } from './plans.ts';

/** The step's log as lines of the job's log, written in order once the step is done. */
function jobLog(ctx: ServerContext): RetentionLog & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const line = (level: LogLine['level'], message: string, fields?: Record<string, unknown>) => void lines.push({ at: ctx.now(), level, message: `server: ${fields ? `${message} ${JSON.stringify(fields)}` : message}` });
  return { lines, info: (m, f) => line('info', m, f), warn: (m) => line('warn', m), error: (m, f) => line('error', m, f) };
}

/**
 * Applies the retention a completed job left due, records its report on the job and raises or resolves
 * the plan's retention-failed alert. A stop of the server (the signal) leaves it due: it runs again.
 */
export async function applyServerRetention(ctx: ServerContext, jobId: string, signal: AbortSignal, describeError: (err: unknown) => string): Promise<void> {
  const job = await ctx.db.selectFrom('jobs').selectAll().where('id', '=', jobId).where('server_retention', '=', 'due').executeTakeFirst();
  if (!job?.plan_id) return;
  const params = JSON.parse(job.params) as BackupParams;
  const held = params.destinations.filter((d) => d.kind === 's3');
  const log = jobLog(ctx);
  const report = await applyPlanRetention(
    async () => {
      const plan = await ctx.db.selectFrom('plans').selectAll().where('id', '=', job.plan_id).where('user_id', '=', job.user_id).executeTakeFirst();
      const passphrase = plan && planPassphrase(ctx, plan);
      if (!passphrase) throw new Error("not applied: the server no longer holds the plan's passphrase (it was cleared, or the plan deleted, after the run started)");
      const stores = (await destinationsOf(ctx, job.user_id, held.map((d) => d.id))).map((d) => new RetryStore(openServerStore(ctx, d)));
      try {
        const repo = await Repository.open(stores, passphrase, { onDamaged: (name, reason) => log.warn(`skipping ${name}: ${reason}`) });
        for (const u of repo.unavailable) log.warn(`destination ${u.store.location} is left out: ${u.error.message}`);
        await repo.loadIndex();
        return repo;
      } catch (err) {
        await Promise.all(stores.map((s) => s.close()));
        throw err;
      }
    },
    {
      retention: params.retention!,
      // The agent made the snapshot: its host and paths are read from the snapshot itself.
      made: async (repo) => {
        if (!job.snapshot_id) throw new Error('not applied: the run reported no snapshot');
        const made = resolveSnapshot(await repo.listSnapshots(), job.snapshot_id).snapshot;
        return { host: made.host, paths: made.paths };
      },
      prune: params.prune === true,
      // Agents cannot delete their markers here: the server's prunes remove those of agents that are gone.
      removeGoneWriters: true,
      signal,
      log,
      describeError: (err) =>
        err instanceof WrongPassphraseError
          ? "the passphrase the server holds for this plan opens no key of the repository; nothing was deleted; give the plan's passphrase again"
          : describeError(err),
    },
  );
  if (signal.aborted) throw new Error('the server is stopping; the retention runs again');
  // The log and the alert first: whoever sees the report on the job sees them too.
  await appendLog(ctx, job.agent_id, job.id, log.lines);
  await recordRetention(ctx, job, job.plan_id, report, 'server');
  const recorded = await ctx.db.updateTable('jobs').set({ server_retention: JSON.stringify(report) }).where('id', '=', job.id).where('server_retention', '=', 'due').returningAll().executeTakeFirst();
  if (recorded) await announceJob(ctx, recorded);
}
