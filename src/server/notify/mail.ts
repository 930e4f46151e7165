// Email from the fleet server, through the daemon's SMTP channel (src/daemon/notify/channels.ts): each
// new alert to the person it belongs to, each person's report on the schedule they chose, and a test
// message for the administrator. The SMTP server is the administrator's setting; its password is sealed
// with the server's key like the storage credentials. Mail goes only to the account's own address, so
// nobody learns of another person's machines.
import type { FastifyInstance } from 'fastify';
import { sendEmail, type SendOptions } from '../../daemon/notify/channels.ts';
import type { Message } from '../../daemon/notify/messages.ts';
import type { EmailConfig } from '../../config/automation.ts';
import { redactString } from '../../jobs/redact.ts';
import { formatBytes } from '../../units.ts';
import { requireAdmin, requireSession } from '../auth/guard.ts';
import type { ServerContext } from '../context.ts';
import type { Alert } from '../db/schema.ts';
import { HttpError } from '../http-error.ts';
import { buildReport, PERIODS, type Period, type Report } from '../reports/reports.ts';
import { open, seal } from '../storage/secret-box.ts';

const SMTP_KEY = 'smtp';
const REPORT_KEY_PREFIX = 'report-email:';

interface StoredSmtp {
  readonly host: string;
  readonly port: number | null;
  readonly secure: boolean;
  readonly user: string | null;
  readonly from: string;
  /** Sealed with the server's key. */
  readonly password: string | null;
}

export interface SmtpInput {
  readonly host: string;
  readonly port?: number | null;
  readonly secure?: boolean;
  readonly user?: string | null;
  /** Absent: the stored one is kept. */
  readonly password?: string;
  readonly from: string;
}

export const SMTP_BODY_SCHEMA = {
  type: ['object', 'null'],
  required: ['host', 'from'],
  additionalProperties: false,
  properties: {
    host: { type: 'string', minLength: 1, maxLength: 255 },
    port: { type: ['integer', 'null'], minimum: 1, maximum: 65535 },
    secure: { type: 'boolean' },
    user: { type: ['string', 'null'], maxLength: 255 },
    password: { type: 'string', maxLength: 1024 },
    from: { type: 'string', minLength: 3, maxLength: 320, pattern: '^[^\\s@]+@[^\\s@]+$' },
  },
} as const;

async function readSmtp(ctx: ServerContext): Promise<StoredSmtp | undefined> {
  const row = await ctx.db.selectFrom('settings').select('value').where('key', '=', SMTP_KEY).executeTakeFirst();
  return row ? (JSON.parse(row.value) as StoredSmtp) : undefined;
}

/** What the administrator sees: everything but the password. */
export async function smtpView(ctx: ServerContext) {
  const s = await readSmtp(ctx);
  return s ? { host: s.host, port: s.port, secure: s.secure, user: s.user, from: s.from, hasPassword: s.password !== null } : null;
}

/** Stores the SMTP server (null removes it); a password not given keeps the stored one. */
export async function writeSmtp(ctx: ServerContext, input: SmtpInput | null): Promise<void> {
  if (input === null) {
    await ctx.db.deleteFrom('settings').where('key', '=', SMTP_KEY).execute();
    return;
  }
  const previous = await readSmtp(ctx);
  const password = input.password !== undefined ? (input.password === '' ? null : seal(ctx.secret, input.password)) : (previous?.password ?? null);
  const stored: StoredSmtp = { host: input.host.trim(), port: input.port ?? null, secure: input.secure ?? false, user: input.user?.trim() || null, from: input.from.trim(), password };
  const value = JSON.stringify(stored);
  await ctx.db.insertInto('settings').values({ key: SMTP_KEY, value }).onConflict((oc) => oc.column('key').doUpdateSet({ value })).execute();
}

function alertMessage(alert: Alert): Message {
  const message = redactString(alert.message);
  return {
    subject: `coffer alert: ${message.length > 120 ? `${message.slice(0, 117)}…` : message}`,
    text: [
      message,
      '',
      `Raised ${new Date(alert.created_at).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}.`,
      'What to do: open the Alerts page of the Coffer dashboard to see it and acknowledge it; it resolves by itself once the condition clears.',
    ].join('\n'),
  };
}

const PERIOD_WORD: Record<Period, string> = { day: 'daily', week: 'weekly', month: 'monthly' };

function reportMessage(report: Report): Message {
  const when = (ms: number) => new Date(ms).toISOString().slice(0, 16).replace('T', ' ');
  const rate = report.successRate === null ? 'no backup finished' : `${Math.round(report.successRate * 100)}% of backups succeeded`;
  return {
    subject: `coffer: ${PERIOD_WORD[report.period]} report: ${report.jobs.total} jobs, ${report.failures.length} failed`,
    text: [
      `From ${when(report.from)} to ${when(report.to)} UTC: ${report.jobs.total} jobs, ${rate}.`,
      `Data protected: ${formatBytes(report.bytesProtected)}; added: ${formatBytes(report.bytesAdded)}.`,
      ...(report.slowestDestinations.length ? ['', 'Slowest destinations:', ...report.slowestDestinations.map((d) => `  ${d.name ?? d.destinationId}: ${formatBytes(d.bytesPerSecond)}/s over ${d.jobs} jobs`)] : []),
      ...(report.failures.length
        ? ['', 'Failures:', ...report.failures.slice(0, 20).map((f) => `  job ${f.jobId.slice(0, 8)}: ${redactString(f.error ?? 'failed')}`), ...(report.failures.length > 20 ? [`  and ${report.failures.length - 20} more`] : [])]
        : []),
      '',
      'The Reports page of the Coffer dashboard has the same report with charts, and exports it as JSON or CSV.',
    ].join('\n'),
  };
}

export class ServerMailer {
  private readonly ctx: ServerContext;
  private readonly sendOptions: SendOptions;
  private readonly pending = new Set<Promise<void>>();

  constructor(ctx: ServerContext, options: { sendOptions?: SendOptions } = {}) {
    this.ctx = ctx;
    this.sendOptions = options.sendOptions ?? {};
  }

  private async email(to: string, message: Message): Promise<boolean> {
    const smtp = await readSmtp(this.ctx);
    if (!smtp) return false;
    const settings: EmailConfig = { smtp: { host: smtp.host, ...(smtp.port ? { port: smtp.port } : {}), secure: smtp.secure, ...(smtp.user ? { user: smtp.user } : {}) }, from: smtp.from };
    await sendEmail(settings, [to], message, { ...this.sendOptions, ...(smtp.password ? { password: open(this.ctx.secret, smtp.password) } : {}) });
    return true;
  }

  private async addressOf(userId: string): Promise<string | undefined> {
    return (await this.ctx.db.selectFrom('users').select('email').where('id', '=', userId).executeTakeFirst())?.email;
  }

  /** A new alert, mailed to its owner in the background; a failure is logged. */
  readonly alertRaised = (alert: Alert): void => {
    const sending = (async () => {
      const to = await this.addressOf(alert.user_id);
      if (to && (await this.email(to, alertMessage(alert)))) this.ctx.log.info({ alert: alert.id, kind: alert.kind }, 'alert emailed');
    })()
      .catch((err: Error) => this.ctx.log.warn({ alert: alert.id, error: err.message }, 'could not email an alert'))
      .finally(() => this.pending.delete(sending));
    this.pending.add(sending);
  };

  /** A test message to the administrator's own address; throws what went wrong. */
  async sendTest(userId: string): Promise<string> {
    const to = await this.addressOf(userId);
    if (!to) throw new HttpError(404, 'account not found');
    const sent = await this.email(to, { subject: 'coffer: test email', text: 'The Coffer server can send email: new alerts and scheduled reports will arrive like this one.' });
    if (!sent) throw new HttpError(409, 'no SMTP server is set; save one in the server settings first');
    return to;
  }

  /**
   * Mails each report whose period has passed since the last one. Any server may run this at any time:
   * a compare-and-swap on the schedule's row makes each report go once.
   */
  async sendDueReports(at = this.ctx.now()): Promise<number> {
    if (!(await readSmtp(this.ctx))) return 0;
    const rows = await this.ctx.db.selectFrom('settings').select(['key', 'value']).where('key', 'like', `${REPORT_KEY_PREFIX}%`).execute();
    let sent = 0;
    for (const row of rows) {
      const schedule = JSON.parse(row.value) as ReportSchedule;
      if (at - schedule.last < PERIODS[schedule.period]) continue;
      const next = JSON.stringify({ ...schedule, last: at } satisfies ReportSchedule);
      const won = await this.ctx.db.updateTable('settings').set({ value: next }).where('key', '=', row.key).where('value', '=', row.value).executeTakeFirst();
      if (Number(won.numUpdatedRows) === 0) continue;
      const userId = row.key.slice(REPORT_KEY_PREFIX.length);
      const to = await this.addressOf(userId);
      if (!to) continue;
      try {
        await this.email(to, reportMessage(await buildReport(this.ctx, userId, schedule.period, at)));
        sent++;
      } catch (err) {
        this.ctx.log.warn({ user: userId, error: (err as Error).message }, 'could not email a report');
      }
    }
    return sent;
  }

  async stop(): Promise<void> {
    await Promise.all(this.pending);
  }
}

interface ReportSchedule {
  readonly period: Period;
  /** When the last report was sent (or the schedule set): the next one covers the period after it. */
  readonly last: number;
}

/** A person's report schedule, and the administrator's SMTP settings test. */
export async function mailRoutes(app: FastifyInstance, { ctx, mailer }: { ctx: ServerContext; mailer: ServerMailer }): Promise<void> {
  app.get('/api/reports/email', { schema: { summary: 'how often your report is emailed to you (null: never)' } }, async (request) => {
    const { user } = requireSession(request);
    const row = await ctx.db.selectFrom('settings').select('value').where('key', '=', `${REPORT_KEY_PREFIX}${user.id}`).executeTakeFirst();
    return { period: row ? (JSON.parse(row.value) as ReportSchedule).period : null, to: user.email, smtp: (await readSmtp(ctx)) !== undefined };
  });

  app.put<{ Body: { period: Period | null } }>(
    '/api/reports/email',
    {
      schema: {
        summary: 'email your report every day, week or month (null: never); the first one after a whole period',
        body: { type: 'object', required: ['period'], additionalProperties: false, properties: { period: { enum: ['day', 'week', 'month', null] } } },
      },
    },
    async (request) => {
      const { user } = requireSession(request);
      const key = `${REPORT_KEY_PREFIX}${user.id}`;
      const period = request.body.period;
      if (period === null) await ctx.db.deleteFrom('settings').where('key', '=', key).execute();
      else {
        const value = JSON.stringify({ period, last: ctx.now() } satisfies ReportSchedule);
        await ctx.db.insertInto('settings').values({ key, value }).onConflict((oc) => oc.column('key').doUpdateSet({ value })).execute();
      }
      return { period, to: user.email, smtp: (await readSmtp(ctx)) !== undefined };
    },
  );

  app.post('/api/admin/settings/test-email', { schema: { summary: 'send a test email to your own address through the SMTP server (administrator)' } }, async (request) => {
    const auth = requireAdmin(request);
    try {
      return { to: [await mailer.sendTest(auth.user.id)] };
    } catch (err) {
      if (err instanceof HttpError) throw err;
      throw new HttpError(502, (err as Error).message);
    }
  });
}
