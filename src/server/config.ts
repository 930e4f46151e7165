// The server's configuration: defaults, then a YAML file (`--config`, COFFER_SERVER_CONFIG), then the
// environment, then command-line flags. Validated with zod; a mistake is one line naming the setting.
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { resolveDataDir } from '../jobs/index.ts';

const SettingsSchema = z
  .object({
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(8470),
    dataDir: z.string().min(1).optional(),
    /** postgres://…: PostgreSQL and pg-boss instead of SQLite and the in-process queue. */
    databaseUrl: z.string().regex(/^postgres(ql)?:\/\//, 'a PostgreSQL URL starts with postgres://').optional(),
    tlsCert: z.string().optional(),
    tlsKey: z.string().optional(),
    /** Behind a reverse proxy: trust X-Forwarded-For/-Proto (client address for rate limits, Secure cookies). */
    trustProxy: z.boolean().default(false),
    /** An agent that has not sent a heartbeat for this long is offline. */
    heartbeatTimeoutSeconds: z.number().positive().default(30),
    /** How often agents are told to send a heartbeat. */
    heartbeatIntervalSeconds: z.number().positive().default(10),
    sessionDays: z.number().positive().default(14),
    /** Server-held destinations are test-written this often (a failure opens an alert). */
    destinationTestHours: z.number().positive().default(6),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** A log file (rotated by size) instead of stdout. */
    logFile: z.string().optional(),
    logMaxBytes: z.number().int().positive().default(10 * 1024 * 1024),
    logMaxFiles: z.number().int().positive().default(5),
  })
  .strict()
  .refine((s) => !s.tlsCert === !s.tlsKey, { message: 'give both tlsCert and tlsKey, or neither' });

export type ServerSettings = z.infer<typeof SettingsSchema> & { readonly dataDir: string };

export class ServerConfigError extends Error {
  override name = 'ServerConfigError';
}

const ENV: Record<string, [keyof z.infer<typeof SettingsSchema>, 'string' | 'number' | 'boolean']> = {
  COFFER_SERVER_HOST: ['host', 'string'],
  COFFER_SERVER_PORT: ['port', 'number'],
  COFFER_SERVER_DATA_DIR: ['dataDir', 'string'],
  DATABASE_URL: ['databaseUrl', 'string'],
  COFFER_TLS_CERT: ['tlsCert', 'string'],
  COFFER_TLS_KEY: ['tlsKey', 'string'],
  COFFER_TRUST_PROXY: ['trustProxy', 'boolean'],
  COFFER_HEARTBEAT_TIMEOUT: ['heartbeatTimeoutSeconds', 'number'],
  COFFER_LOG_LEVEL: ['logLevel', 'string'],
  COFFER_LOG_FILE: ['logFile', 'string'],
};

function fromEnv(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, [key, type]] of Object.entries(ENV)) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    if (type === 'number') {
      const n = Number(raw);
      if (!Number.isFinite(n)) throw new ServerConfigError(`${name}=${raw} is not a number`);
      out[key] = n;
    } else if (type === 'boolean') {
      if (!/^(1|0|true|false|yes|no)$/i.test(raw)) throw new ServerConfigError(`${name}=${raw}: use true or false`);
      out[key] = /^(1|true|yes)$/i.test(raw);
    } else out[key] = raw;
  }
  return out;
}

function fromFile(file: string | undefined): Record<string, unknown> {
  if (!file) return {};
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ServerConfigError(`cannot read the server configuration ${file}: ${(err as Error).message}`);
  }
  const doc = YAML.parseDocument(text);
  if (doc.errors.length > 0) throw new ServerConfigError(`${file}: ${doc.errors[0]!.message.split('\n')[0]}`);
  const value = doc.toJS() ?? {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new ServerConfigError(`${file}: expected settings (key: value lines)`);
  return value as Record<string, unknown>;
}

export function loadServerSettings(options: { file?: string; env?: NodeJS.ProcessEnv; flags?: Record<string, unknown> } = {}): ServerSettings {
  const env = options.env ?? process.env;
  const file = options.file ?? env.COFFER_SERVER_CONFIG;
  const merged = { ...fromFile(file), ...fromEnv(env), ...Object.fromEntries(Object.entries(options.flags ?? {}).filter(([, v]) => v !== undefined)) };
  const parsed = SettingsSchema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ServerConfigError(`${file ? `${file}: ` : ''}${issue.path.join('.') || 'settings'}: ${issue.message}`);
  }
  const dataDir = path.resolve(parsed.data.dataDir ?? path.join(resolveDataDir(undefined, env), 'server'));
  return { ...parsed.data, dataDir };
}
