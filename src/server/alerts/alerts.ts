// Alerts: raised automatically when something needs a person (a job failed after its retries, an agent
// went offline, a plan is overdue, a destination fails its test-write), at most one open alert per
// condition, acknowledged by a person, resolved automatically when the condition clears.
import crypto from 'node:crypto';
import type { ServerContext } from '../context.ts';
import type { Alert, AlertsTable } from '../db/schema.ts';
import { isUniqueViolation } from '../db/errors.ts';

export type AlertKind = AlertsTable['kind'];

export function apiAlert(a: Alert) {
  return {
    id: a.id,
    kind: a.kind,
    subjectId: a.subject_id,
    message: a.message,
    createdAt: a.created_at,
    acknowledgedBy: a.acknowledged_by,
    acknowledgedAt: a.acknowledged_at,
    resolvedAt: a.resolved_at,
  };
}

/** Opens an alert unless one is open for the same condition; returns it when new. */
export async function raiseAlert(ctx: ServerContext, userId: string, kind: AlertKind, subjectId: string, message: string): Promise<Alert | undefined> {
  const alert: Alert = { id: crypto.randomUUID(), user_id: userId, kind, subject_id: subjectId, message, created_at: ctx.now(), acknowledged_by: null, acknowledged_at: null, resolved_at: null };
  try {
    await ctx.db.insertInto('alerts').values(alert).execute();
  } catch (err) {
    if (isUniqueViolation(err)) return undefined;
    throw err;
  }
  await ctx.events.append({ userId, type: 'alert.raised', data: apiAlert(alert) });
  for (const sink of ctx.alertSinks) sink(alert);
  return alert;
}

export async function resolveAlerts(ctx: ServerContext, userId: string, kind: AlertKind, subjectId: string): Promise<void> {
  const resolved = await ctx.db
    .updateTable('alerts')
    .set({ resolved_at: ctx.now() })
    .where('user_id', '=', userId)
    .where('kind', '=', kind)
    .where('subject_id', '=', subjectId)
    .where('resolved_at', 'is', null)
    .returningAll()
    .execute();
  for (const a of resolved) await ctx.events.append({ userId, type: 'alert.resolved', data: apiAlert(a) });
}
