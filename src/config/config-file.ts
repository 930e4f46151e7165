// The configuration file: named backup plans (what to back up, where, how to get the passphrase) and
// the retry policy. YAML, validated with zod; secrets never go in it, only where to find them.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { automationProblems, automationShape, planAutomationShape, RetentionSchema } from './automation.ts';
import { describeProblem, parseYaml, schemaProblems, type ConfigProblem } from './problems.ts';
import { makeDirectories } from '../store/make-directories.ts';
import { locationScheme } from '../store/open-store.ts';
import { ConfigError } from './config-error.ts';
import { expandVariables, UnsetVariableError } from './expand.ts';

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
    retention: RetentionSchema.optional(),
    /** Back the paths up with this many worker processes in parallel, into one snapshot (docs/SCALE-OUT.md). */
    workers: z.number().int().min(1).max(64).optional(),
    /** With workers: a shard that fails leaves a snapshot marked partial instead of none. */
    allowPartial: z.boolean().optional(),
    // Unattended runs: schedule, hooks, sources, notifications… (automation.ts).
    ...planAutomationShape,
  })
  .strict()
  .refine((p) => !(p.passwordFile && p.passwordCommand), { message: 'give passwordFile or passwordCommand, not both' })
  .refine((p) => p.paths.length > 0 || p.filesFrom.length > 0 || (p.sources?.length ?? 0) > 0, { message: 'a plan backs up paths (or filesFrom), sources (database dumps, commands) or both; give at least one', path: ['paths'] })
  // Prune frees only what forget removed, and the daemon forgets only by the plan's retention. (A
  // pruneEvery that is no number of runs has its own problem already.)
  .refine((p) => p.retention !== undefined || !(Number.isInteger(p.pruneEvery) && p.pruneEvery! >= 1), {
    message: 'is set, but the plan has no retention policy, so its runs forget nothing and a prune would free nothing; add one (retention: { keepDaily: 7, keepWeekly: 4 }) or remove pruneEvery',
    path: ['pruneEvery'],
  });

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
/** A plan as written in the file: fields with defaults may be left out. */
export type PlanInput = z.input<typeof PlanSchema>;
export type RetryConfig = z.infer<typeof RetriesSchema>;
export type Config = z.infer<typeof ConfigSchema>;

export { ConfigError };

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

/** The file's text; undefined when it does not exist. */
function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ConfigError(`cannot read ${file}: ${(err as Error).message}`);
  }
}

/** The file as a YAML document (comments and order kept); undefined when it does not exist. */
function readDocument(file: string): YAML.Document | undefined {
  const text = readText(file);
  if (text === undefined) return undefined;
  const doc = YAML.parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    const first = doc.errors[0]!;
    const where = first.linePos?.[0] ? ` line ${first.linePos[0].line}` : '';
    throw new ConfigError(`${file}${where}: ${first.message.split('\n')[0]}`);
  }
  return doc;
}

/**
 * The parsed file; an empty configuration when it does not exist. Errors name the file, the line and the
 * field. `~` and `$VARS` are expanded and relative paths resolved against the file's directory (see
 * resolvePlan).
 */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env, home: string = os.homedir()): Config {
  const text = readText(file);
  if (text === undefined) return emptyConfig();
  const { config, problems } = checkConfigText(text);
  if (!config) {
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more; coffer config check lists them)` : '';
    throw new ConfigError(`${describeProblem(file, problems[0]!)}${more}`);
  }
  // A plan without a credentialsCommand of its own takes the configuration's.
  const inherited = (plan: PlanConfig): PlanConfig => (plan.credentialsCommand || !config.credentialsCommand ? plan : { ...plan, credentialsCommand: config.credentialsCommand });
  const plans = Object.fromEntries(Object.entries(config.plans).map(([name, plan]) => [name, resolvePlan(inherited(plan), `${file}: plans.${name}`, path.dirname(file), env, home)]));
  return { ...config, plans };
}

/**
 * A plan as the commands use it: `~` and `$VARS` expanded in the fields below (not in passwordCommand,
 * which its shell expands), and relative paths (sources, filesFrom lists, local repositories, cacert
 * and passwordFile, the PATH of a priority and the LOCATION of a limit) taken from the configuration
 * file's directory, so a plan means the same whatever directory coffer runs in.
 */
function resolvePlan(plan: PlanConfig, where: string, dir: string, env: NodeJS.ProcessEnv, home: string): PlanConfig {
  const expand = (field: string, text: string): string => {
    try {
      return expandVariables(text, env, home);
    } catch (err) {
      if (err instanceof UnsetVariableError) throw new ConfigError(`${where}.${field}: ${err.message} (write $$ for a literal $)`);
      throw err;
    }
  };
  const file = (text: string): string => path.resolve(dir, text);
  const location = (text: string): string => (locationScheme(text) === undefined ? file(text) : text);
  /** `PATH=LEVEL` or `LOCATION=RATE`: the part before the last `=` is resolved; a plain RATE is left alone. */
  const keyed = (resolve: (text: string) => string) => (text: string): string => {
    const eq = text.lastIndexOf('=');
    return eq < 0 ? text : `${resolve(text.slice(0, eq))}${text.slice(eq)}`;
  };
  const list = (field: string, values: readonly string[], resolve: (text: string) => string = (t) => t): string[] =>
    values.map((v, i) => resolve(expand(`${field}.${i}`, v)));
  return {
    ...plan,
    repos: list('repos', plan.repos, location),
    paths: list('paths', plan.paths, file),
    exclude: list('exclude', plan.exclude),
    iexclude: list('iexclude', plan.iexclude),
    filesFrom: list('filesFrom', plan.filesFrom, file),
    tags: list('tags', plan.tags),
    priority: list('priority', plan.priority, keyed(file)),
    limitUpload: list('limitUpload', plan.limitUpload, keyed(location)),
    limitDownload: list('limitDownload', plan.limitDownload, keyed(location)),
    ...(plan.cacert === undefined ? {} : { cacert: list('cacert', plan.cacert, file) }),
    ...(plan.host === undefined ? {} : { host: expand('host', plan.host) }),
    ...(plan.passwordFile === undefined ? {} : { passwordFile: file(expand('passwordFile', plan.passwordFile)) }),
  };
}

export function planFrom(config: Config, name: string, file: string): PlanConfig {
  const plan = config.plans[name];
  if (!plan) {
    const known = Object.keys(config.plans);
    throw new ConfigError(`no plan "${name}" in ${file}${known.length ? ` (plans: ${known.join(', ')})` : '; create one with coffer setup'}`);
  }
  return plan;
}

/** The plan called `name` from the configuration file (`--config`, COFFER_CONFIG or the default). */
export function loadPlan(configFlag: string | undefined, name: string): PlanConfig {
  const file = resolveConfigFile(configFlag);
  return planFrom(loadConfig(file), name, file);
}

const NEW_FILE_HEADER = '# Coffer configuration (coffer setup writes it; coffer doctor checks it). No secrets here:\n# passphrases come from COFFER_PASSWORD, passwordFile or passwordCommand.\n';

/**
 * Adds or replaces one plan. The file is edited as a YAML document, so its comments, key order and
 * other plans stay as they were. Written with mode 0600, atomically: a crash leaves the old file or the
 * new one.
 */
export function savePlan(file: string, name: string, plan: PlanInput): void {
  const original = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  const doc = readDocument(file) ?? new YAML.Document({});
  if (!doc.contents) doc.contents = doc.createNode({});
  if (!YAML.isMap(doc.contents)) throw new ConfigError(`${file}: the top level is not a mapping; fix or move the file, then run setup again`);
  if (!doc.has('plans') || doc.get('plans') === null) doc.set('plans', doc.createNode({}));
  doc.setIn(['plans', name], doc.createNode(plan, { flow: false }));
  // Flow collections are written as the file writes them: `[a, b]` unless it pads them, `{ a: 1 }`.
  const flowCollectionPadding = /[[{] \S/.test(original);
  const text = `${original ? '' : NEW_FILE_HEADER}${doc.toString({ flowCollectionPadding })}`;
  makeDirectories(path.dirname(file), 0o700);
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, text, { mode: 0o600 });
  fs.renameSync(tmp, file);
}
