// The configuration of unattended runs (issue 11): per plan its schedule, hooks, streamed sources
// (database dumps, commands), notifications, staleness and age limits, storage credentials from a
// command; at the top level the daemon's settings, how to send email, and default notifications.
// config-file.ts spreads these shapes into its schemas. Values keep the form they were written in
// (durations as "26h", schedules as cron text), so a file loaded and saved again is unchanged; the
// helpers at the bottom turn them into what the daemon uses.
import path from 'node:path';
import { z } from 'zod';
import { parseSchedule, ScheduleError, type Schedule } from './schedule.ts';
import { parseDuration } from './duration.ts';

const duration = z.string().refine((text) => parseDuration(text) !== undefined, { message: 'not a duration; write e.g. 90s, 5m, 26h or 7d' });

const ScheduleSchema = z.preprocess(
  (value) => (typeof value === 'string' ? { cron: value } : value),
  z
    .object({
      /** Five fields (minute hour day month weekday), six with seconds first, or @daily, @hourly… */
      cron: z.string().min(1),
      /** IANA time zone; default the machine's. */
      timezone: z.string().optional(),
    })
    .strict()
    .superRefine((spec, ctx) => {
      try {
        parseSchedule(spec);
      } catch (err) {
        if (!(err instanceof ScheduleError)) throw err;
        ctx.addIssue({ code: 'custom', message: err.message, path: /time zone/.test(err.message) ? ['timezone'] : ['cron'] });
      }
    }),
);

const HookSchema = z.preprocess(
  (value) => (typeof value === 'string' ? { command: value } : value),
  z
    .object({
      /** Run with /bin/sh -c; the job's details are in COFFER_* environment variables. */
      command: z.string().min(1),
      /** Killed after this long (default 5m); a before-hook that times out fails the run. */
      timeout: duration.optional(),
    })
    .strict(),
);

const HooksSchema = z
  .object({
    before: HookSchema.optional(),
    after: HookSchema.optional(),
    onSuccess: HookSchema.optional(),
    onFailure: HookSchema.optional(),
  })
  .strict();

/** A name at the top of the snapshot: one path component. */

const PRUNE_EVERY = 'a whole number of runs, 1 or more: the daemon prunes after every N-th successful run (1: after each)';
export const streamFileName = z
  .string()
  .min(1)
  .max(255)
  .refine((name) => !name.includes('/') && !name.includes('\0') && name !== '.' && name !== '..', { message: 'a file name without "/", not "." or ".."' });

const secretSource = {
  /** A command printing the password (e.g. pass show db); it reaches the dump tool's or mailer's hands only. */
  passwordCommand: z.string().min(1).optional(),
  passwordFile: z.string().min(1).optional(),
};
const oneSecretSource = [(s: { passwordCommand?: string; passwordFile?: string }) => !(s.passwordCommand && s.passwordFile), { message: 'give passwordFile or passwordCommand, not both' }] as const;

const DatabaseServer = {
  host: z.string().min(1).optional(),
  port: z.number().int().min(1).max(65535).optional(),
  user: z.string().min(1).optional(),
  /** Extra arguments for the dump tool. */
  options: z.array(z.string()).optional(),
  filename: streamFileName.optional(),
  ...secretSource,
};

const SourceSchema = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('postgres'),
      database: z.string().min(1),
      /** plain: SQL for psql (the default; deduplicates well); custom: for pg_restore, written uncompressed. */
      format: z.enum(['plain', 'custom']).optional(),
      /** The pg_dump to run (default pg_dump on the PATH). */
      command: z.string().min(1).optional(),
      ...DatabaseServer,
    })
    .strict()
    .refine(...oneSecretSource),
  z
    .object({
      type: z.literal('mysql'),
      database: z.string().min(1),
      /** The server's Unix socket. */
      socket: z.string().min(1).optional(),
      /** The dump tool (default mysqldump, else mariadb-dump). */
      command: z.string().min(1).optional(),
      ...DatabaseServer,
    })
    .strict()
    .refine(...oneSecretSource),
  z
    .object({
      type: z.literal('sqlite'),
      /** The database file; it may be written to while it is dumped. */
      path: z.string().min(1),
      /** The sqlite3 command-line shell (default sqlite3 on the PATH). */
      command: z.string().min(1).optional(),
      filename: streamFileName.optional(),
    })
    .strict(),
  z
    .object({
      type: z.literal('command'),
      /** Run with /bin/sh -c; whatever it prints on stdout is the file. It must exit 0. */
      command: z.string().min(1),
      filename: streamFileName,
    })
    .strict(),
]);

const httpUrl = z.url({ protocol: /^https?$/, error: 'not an http:// or https:// URL' });

const NotifyEvent = z.enum(['failure', 'recovery', 'overdue', 'test-write']);

const NotifySchema = z
  .object({
    /** Addresses to email (the top-level `email` section says how). */
    email: z.array(z.email({ error: 'not an email address' })).optional(),
    /** URLs that receive a JSON POST per notification (retried). */
    webhooks: z.array(httpUrl).optional(),
    /** Healthchecks-style ping URL: URL/start when a run starts, URL on success, URL/fail on failure. */
    ping: httpUrl.optional(),
    /** Which notifications to send (default all): failure, recovery, overdue, test-write. */
    on: z.array(NotifyEvent).optional(),
  })
  .strict();

/** Fields of a plan, beside what to back up and where. */
const keepCount = z.number().int().min(-1, 'a number of snapshots, or -1 for all');
/** forget's --keep-within spelling (engine/retention.ts), not the automation durations above: months and years count. */
const keepWithin = z.string().regex(/^(?:\d+[ymwdh])+$/, 'a duration such as 30d, 1y6m, 2w or 12h');

/**
 * A plan's forget policy, the rules of engine/retention.ts, in the same shape wherever a plan is written: a
 * configuration file (`coffer forget --plan P`, the daemon) and a server plan (applied by its agent).
 */
export const RetentionSchema = z
  .object({
    keepLast: keepCount.optional(),
    keepHourly: keepCount.optional(),
    keepDaily: keepCount.optional(),
    keepWeekly: keepCount.optional(),
    keepMonthly: keepCount.optional(),
    keepYearly: keepCount.optional(),
    keepWithin: keepWithin.optional(),
    keepWithinHourly: keepWithin.optional(),
    keepWithinDaily: keepWithin.optional(),
    keepWithinWeekly: keepWithin.optional(),
    keepWithinMonthly: keepWithin.optional(),
    keepWithinYearly: keepWithin.optional(),
    keepTag: z.array(z.string().min(1)).optional(),
    /** 'host,paths' (the default), any of host, paths, tags, or '' for one group. */
    groupBy: z.string().optional(),
  })
  .strict()
  // Rules that keep nothing (every count 0, no duration, no tag): forget refuses such a policy, so each
  // run would fail its retention. None at all ({}) is no policy, which the callers treat as such.
  .refine(
    (r) =>
      Object.keys(r).every((k) => k === 'groupBy') ||
      Object.entries(r).some(([k, v]) => (k.startsWith('keepWithin') ? v !== undefined : k === 'keepTag' ? (v as string[]).length > 0 : k !== 'groupBy' && v !== 0 && v !== undefined)),
    { message: 'keeps no snapshot: give a count of 1 or more (-1 for every period), a keepWithin… duration or a keepTag; forget never removes every snapshot' },
  );

export const planAutomationShape = {
  schedule: ScheduleSchema.optional(),
  /** Higher runs first when more plans are due than may run at once. */
  queuePriority: z.number().int().min(-1000).max(1000).optional(),
  hooks: HooksSchema.optional(),
  sources: z.array(SourceSchema).optional(),
  notify: NotifySchema.optional(),
  /** With a `retention` policy (config-file.ts says so when it is missing): prune after every N-th successful run of the plan (the daemon). */
  pruneEvery: z.number().int(PRUNE_EVERY).min(1, PRUNE_EVERY).optional(),
  /** A run whose heartbeat is older than this is taken for dead (default 5m). */
  staleAfter: duration.optional(),
  /** Notify when the plan has had no successful run for longer than this. */
  maxAge: duration.optional(),
  /** A command printing storage credentials as NAME=value lines or a JSON object; never stored. */
  credentialsCommand: z.string().min(1).optional(),
};

const SmtpSchema = z
  .object({
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535).optional(),
    /** TLS from the start (port 465); otherwise STARTTLS when the server offers it. */
    secure: z.boolean().optional(),
    user: z.string().min(1).optional(),
    ...secretSource,
  })
  .strict()
  .refine(...oneSecretSource);

const EmailSchema = z
  .object({
    smtp: SmtpSchema,
    from: z.string().min(1),
  })
  .strict();

const DaemonSchema = z
  .object({
    /** Plans run at once (default 3); the rest wait in a queue. */
    concurrency: z.number().int().min(1).max(64).optional(),
    /** How often every destination gets a test-write (default 24h). */
    testWriteEvery: duration.optional(),
  })
  .strict();

const DefaultNotifySchema = NotifySchema.extend({
  /** A summary of runs, failures, data added and each plan's last success. */
  summary: z.enum(['daily', 'weekly']).optional(),
}).strict();

/** Top-level fields. */
export const automationShape = {
  daemon: DaemonSchema.optional(),
  email: EmailSchema.optional(),
  /** Notifications for every plan that has no `notify` of its own, and the summary. */
  notify: DefaultNotifySchema.optional(),
  /** Storage credentials for every plan that has no credentialsCommand of its own. */
  credentialsCommand: z.string().min(1).optional(),
};

type Shape<T extends Record<string, z.ZodType>> = { [K in keyof T]?: z.infer<T[K]> };
export type PlanAutomation = Shape<typeof planAutomationShape>;
export type RetentionConfig = z.infer<typeof RetentionSchema>;
export type Automation = Shape<typeof automationShape>;
export type SourceConfig = z.infer<typeof SourceSchema>;
export type HookConfig = z.infer<typeof HookSchema>;
export type HooksConfig = z.infer<typeof HooksSchema>;
export type NotifyConfig = z.infer<typeof NotifySchema>;
export type NotifyEvent = z.infer<typeof NotifyEvent>;
export type EmailConfig = z.infer<typeof EmailSchema>;

const safeName = (text: string): string => text.replace(/[/\0]/g, '_');

/** The name of a source's file in the snapshot: its `filename`, else one made from what it dumps. */
export function defaultFileName(source: SourceConfig): string {
  switch (source.type) {
    case 'postgres':
      return source.filename ?? `${safeName(source.database)}.${source.format === 'custom' ? 'pgdump' : 'sql'}`;
    case 'mysql':
      return source.filename ?? `${safeName(source.database)}.sql`;
    case 'sqlite':
      return source.filename ?? `${safeName(path.basename(source.path))}.sql`;
    case 'command':
      return source.filename;
  }
}

/** Rules across fields: where a notification by email is asked for, the file must say how to send it; a plan's sources have distinct names. */
export function automationProblems(config: Automation & { plans: Record<string, PlanAutomation> }): { path: (string | number)[]; message: string }[] {
  const problems: { path: (string | number)[]; message: string }[] = [];
  const noEmail = 'is set, but there is no top-level email section (smtp and from) to send it with';
  if (!config.email && config.notify?.email?.length) problems.push({ path: ['notify', 'email'], message: noEmail });
  for (const [name, plan] of Object.entries(config.plans)) {
    if (!config.email && plan.notify?.email?.length) problems.push({ path: ['plans', name, 'notify', 'email'], message: noEmail });
    const seen = new Set<string>();
    (plan.sources ?? []).forEach((source, i) => {
      const file = defaultFileName(source);
      if (seen.has(file)) problems.push({ path: ['plans', name, 'sources', i], message: `another source of this plan is also stored as ${file}; give one of them its own filename` });
      seen.add(file);
    });
  }
  return problems;
}

// ── What the daemon uses ──────────────────────────────────────────────────────────────────────────

export function scheduleOf(plan: PlanAutomation): Schedule | undefined {
  return plan.schedule ? parseSchedule(plan.schedule) : undefined;
}

/** A duration field in milliseconds (it was validated when the file was loaded). */
export function durationMs(text: string | undefined, fallback: number): number;
export function durationMs(text: string | undefined): number | undefined;
export function durationMs(text: string | undefined, fallback?: number): number | undefined {
  return text === undefined ? fallback : (parseDuration(text) ?? fallback);
}

/** The notifications of a plan: its own, else the top-level defaults. */
export function notifyOf(plan: PlanAutomation, top: Automation): NotifyConfig | undefined {
  return plan.notify ?? top.notify;
}
