// The configuration file: named backup plans (what to back up, where, how to get the passphrase) and
// the retry policy. YAML, validated with zod; secrets never go in it, only where to find them.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { automationProblems, automationShape, planAutomationShape } from './automation.ts';
import { describeProblem, parseYaml, schemaProblems, type ConfigProblem } from './problems.ts';

const PlanSchema = z
  .object({
    repos: z.array(z.string().min(1)).min(1),
    paths: z.array(z.string().min(1)).default([]),
    exclude: z.array(z.string()).default([]),
    iexclude: z.array(z.string()).default([]),
    excludeCaches: z.boolean().default(false),
    excludeIfPresent: z.array(z.string().min(1)).default([]),
    excludeLargerThan: z.string().optional(),
    filesFrom: z.array(z.string().min(1)).default([]),
    tags: z.array(z.string()).default([]),
    host: z.string().optional(),
    oneFileSystem: z.boolean().default(false),
    priority: z.array(z.string()).default([]),
    limitUpload: z.array(z.string()).default([]),
    limitDownload: z.array(z.string()).default([]),
    /** CA certificate files trusted for HTTPS destinations besides the usual ones (self-hosted S3, REST). */
    cacert: z.array(z.string().min(1)).optional(),
    insecureTls: z.boolean().optional(),
    passwordFile: z.string().optional(),
    passwordCommand: z.string().optional(),
    // Unattended runs: schedule, hooks, sources, notifications… (automation.ts).
    ...planAutomationShape,
  })
  .strict()
  .refine((p) => !(p.passwordFile && p.passwordCommand), { message: 'give passwordFile or passwordCommand, not both' })
  .refine((p) => p.paths.length > 0 || p.filesFrom.length > 0 || (p.sources?.length ?? 0) > 0, { message: 'a plan backs up paths (or filesFrom), sources (database dumps, commands) or both; give at least one', path: ['paths'] });

const RetriesSchema = z
  .object({
    max: z.number().int().min(0).max(100).default(3),
    /** Seconds before retry 1, 2, 3…; the last one repeats. */
    delays: z.array(z.number().nonnegative()).min(1).default([30, 60, 120]),
    networkDelays: z.array(z.number().nonnegative()).min(1).default([60, 120, 300]),
  })
  .strict();

const ConfigSchema = z
  .object({
    plans: z.record(z.string().regex(/^[\w.-]+$/, 'plan names are letters, digits, . _ -'), PlanSchema).default({}),
    retries: RetriesSchema.default({ max: 3, delays: [30, 60, 120], networkDelays: [60, 120, 300] }),
    // The daemon, email, default notifications and credentials (automation.ts).
    ...automationShape,
  })
  .strict()
  .superRefine((config, ctx) => {
    for (const p of automationProblems(config)) ctx.addIssue({ code: 'custom', path: p.path, message: p.message });
  });

export type PlanConfig = z.infer<typeof PlanSchema>;
export type RetryConfig = z.infer<typeof RetriesSchema>;
export type Config = z.infer<typeof ConfigSchema>;

/** A plan with every optional field at its default. */
export function newPlan(fields: { repos: string[]; paths: string[]; passwordFile?: string; passwordCommand?: string }): PlanConfig {
  return PlanSchema.parse(fields);
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** `--config`, else COFFER_CONFIG, else $XDG_CONFIG_HOME/coffer/config.yaml, else ~/.config/coffer/config.yaml. */
export function resolveConfigFile(flag: string | undefined, env: NodeJS.ProcessEnv = process.env, home = os.homedir()): string {
  const explicit = flag ?? env.COFFER_CONFIG;
  if (explicit) return path.resolve(explicit);
  const xdg = env.XDG_CONFIG_HOME;
  return path.join(xdg && path.isAbsolute(xdg) ? xdg : path.join(home, '.config'), 'coffer', 'config.yaml');
}

export function emptyConfig(): Config {
  return ConfigSchema.parse({});
}

/** Every problem of a configuration text (syntax, types, unknown fields), each with its line and field. */
export function checkConfigText(text: string): { config?: Config; problems: ConfigProblem[] } {
  const yaml = parseYaml(text);
  if (yaml.problems.length > 0) return { problems: yaml.problems };
  const parsed = ConfigSchema.safeParse(yaml.data);
  if (!parsed.success) return { problems: schemaProblems(parsed.error.issues, yaml.locate) };
  return { config: parsed.data, problems: [] };
}

/** The parsed file; an empty configuration when it does not exist. Errors name the file, the line and the field. */
export function loadConfig(file: string): Config {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyConfig();
    throw new ConfigError(`cannot read ${file}: ${(err as Error).message}`);
  }
  const { config, problems } = checkConfigText(text);
  if (!config) {
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more; coffer config check lists them)` : '';
    throw new ConfigError(`${describeProblem(file, problems[0]!)}${more}`);
  }
  return config;
}

export function planFrom(config: Config, name: string, file: string): PlanConfig {
  const plan = config.plans[name];
  if (!plan) {
    const known = Object.keys(config.plans);
    throw new ConfigError(`no plan "${name}" in ${file}${known.length ? ` (plans: ${known.join(', ')})` : '; create one with coffer setup'}`);
  }
  return plan;
}

/** Writes the configuration (mode 0600, atomically: a crash leaves the old file or the new one). */
export function saveConfig(file: string, config: Config): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const text = `# Coffer configuration (coffer setup writes it; coffer doctor checks it). No secrets here:\n# passphrases come from COFFER_PASSWORD, passwordFile or passwordCommand.\n${YAML.stringify(config)}`;
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, text, { mode: 0o600 });
  fs.renameSync(tmp, file);
}
