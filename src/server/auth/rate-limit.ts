// Login rate limiting, kept in the database so it holds across server processes: after MAX_FAILURES
// failed sign-ins within the window, for one account or from one address, sign-in is refused until the
// lock expires. A success clears the account's count.
import type { ServerContext } from '../context.ts';
import { HttpError } from '../http-error.ts';

export const MAX_FAILURES = 5;
export const WINDOW_MS = 15 * 60_000;
export const LOCK_MS = 15 * 60_000;

export async function assertNotLocked(ctx: ServerContext, keys: readonly string[]): Promise<void> {
  const now = ctx.now();
  const rows = await ctx.db.selectFrom('login_throttle').selectAll().where('key', 'in', [...keys]).where('locked_until', '>', now).execute();
  const until = Math.max(0, ...rows.map((r) => r.locked_until));
  if (until > now) {
    const seconds = Math.ceil((until - now) / 1000);
    throw new HttpError(429, `too many failed sign-ins; try again in ${Math.ceil(seconds / 60)} minutes`, { 'retry-after': String(seconds) });
  }
}

export async function recordFailure(ctx: ServerContext, keys: readonly string[]): Promise<void> {
  const now = ctx.now();
  for (const key of keys) {
    await ctx.db.transaction().execute(async (trx) => {
      const row = await trx.selectFrom('login_throttle').selectAll().where('key', '=', key).executeTakeFirst();
      const fresh = !row || now - row.window_started_at > WINDOW_MS;
      const failures = fresh ? 1 : row.failures + 1;
      const values = { failures, window_started_at: fresh ? now : row.window_started_at, locked_until: failures >= MAX_FAILURES ? now + LOCK_MS : 0 };
      if (row) await trx.updateTable('login_throttle').set(values).where('key', '=', key).execute();
      else await trx.insertInto('login_throttle').values({ key, ...values }).onConflict((oc) => oc.column('key').doUpdateSet(values)).execute();
    });
  }
}

export async function clearFailures(ctx: ServerContext, key: string): Promise<void> {
  await ctx.db.deleteFrom('login_throttle').where('key', '=', key).execute();
}
