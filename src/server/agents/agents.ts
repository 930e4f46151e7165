// Agents as the server records them: registration, heartbeats, online/offline, and the API's view.
import crypto from 'node:crypto';
import { normalizeLabels } from '../../agent/labels.ts';
import type { AgentHello, AgentLimits, Welcome } from '../../agent/protocol.ts';
import { VERSION } from '../../version.ts';
import { raiseAlert, resolveAlerts } from '../alerts/alerts.ts';
import type { ServerContext } from '../context.ts';
import type { Agent } from '../db/schema.ts';
import { HttpError } from '../http-error.ts';
import { interruptAgentJobs, interruptJob, resumeAgentJobs } from '../jobs/lifecycle.ts';

/** -1, 0 or 1 as version a is older, the same or newer than b (numeric dot parts; a pre-release sorts first). */
export function compareVersions(a: string, b: string): number {
  const parse = (v: string) => {
    const [core = '', pre] = v.split('-', 2);
    return { parts: core.split('.').map((p) => Number.parseInt(p, 10) || 0), pre };
  };
  const x = parse(a);
  const y = parse(b);
  for (let i = 0; i < Math.max(x.parts.length, y.parts.length); i++) {
    const d = (x.parts[i] ?? 0) - (y.parts[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  if (x.pre === y.pre) return 0;
  if (x.pre === undefined) return 1;
  if (y.pre === undefined) return -1;
  return x.pre < y.pre ? -1 : 1;
}

export function apiAgent(a: Agent, running = 0) {
  return {
    id: a.id,
    hostname: a.hostname,
    os: a.os,
    version: a.version,
    /** Older than the server: the dashboard flags it for an update. */
    outdated: compareVersions(a.version, VERSION) < 0,
    capacity: a.capacity,
    running,
    status: a.status,
    lastHeartbeatAt: a.last_heartbeat_at,
    registeredAt: a.registered_at,
    uploadLimit: a.upload_limit,
    downloadLimit: a.download_limit,
    labels: agentLabels(a),
  };
}

export function agentLabels(a: Pick<Agent, 'labels'>): string[] {
  return JSON.parse(a.labels) as string[];
}

/** Labels from a request, checked and sorted, as stored; a 400 naming the first bad one. */
export function labelsColumn(labels: readonly unknown[]): string {
  return JSON.stringify(normalizeLabels(labels, (problem) => new HttpError(400, problem)));
}

function cleanText(value: unknown, what: string, max: number): string {
  if (typeof value !== 'string' || value.trim() === '') throw new HttpError(400, `${what} is missing`);
  return value.trim().slice(0, max);
}

/**
 * Registers an agent (or an agent coming back). A process that registers has just started, so jobs the
 * server believed it was running are interrupted, then queued again to resume.
 */
export async function registerAgent(ctx: ServerContext, userId: string, keyId: string, hello: AgentHello): Promise<{ agent: Agent; welcome: Omit<Welcome, keyof AgentLimits> }> {
  const capacity = Number(hello.capacity);
  if (!Number.isInteger(capacity) || capacity < 1 || capacity > 64) throw new HttpError(400, `capacity must be a whole number from 1 to 64, not ${hello.capacity}`);
  const now = ctx.now();
  const fields = {
    api_key_id: keyId,
    hostname: cleanText(hello.hostname, 'hostname', 255),
    os: cleanText(hello.os, 'os', 100),
    version: cleanText(hello.version, 'version', 50),
    capacity,
    status: 'online' as const,
    last_heartbeat_at: now,
    // An agent started with --label sets its labels; one started without keeps those set on the server.
    ...(hello.labels ? { labels: labelsColumn(hello.labels) } : {}),
  };
  let agent: Agent | undefined;
  if (hello.agentId) {
    agent = await ctx.db.updateTable('agents').set(fields).where('id', '=', hello.agentId).where('user_id', '=', userId).returningAll().executeTakeFirst();
  }
  if (!agent) {
    agent = { id: crypto.randomUUID(), user_id: userId, registered_at: now, upload_limit: null, download_limit: null, labels: '[]', ...fields };
    await ctx.db.insertInto('agents').values(agent).execute();
  }
  ctx.log.info({ agent: agent.id, hostname: agent.hostname, version: agent.version }, 'agent registered');
  await interruptAgentJobs(ctx, agent.id, 'the agent restarted');
  await cameBack(ctx, agent);
  return { agent, welcome: { agentId: agent.id, serverVersion: VERSION, heartbeatSeconds: ctx.settings.heartbeatIntervalSeconds } };
}

async function cameBack(ctx: ServerContext, agent: Agent): Promise<void> {
  await resolveAlerts(ctx, agent.user_id, 'agent-offline', agent.id);
  await resumeAgentJobs(ctx, agent.id);
  await ctx.events.append({ userId: agent.user_id, type: 'agent.updated', data: apiAgent(agent) });
}

/** A heartbeat: the agent is alive (and back, if it had been marked offline). */
export async function heartbeat(ctx: ServerContext, agent: Agent): Promise<void> {
  const now = ctx.now();
  const back = await ctx.db.updateTable('agents').set({ status: 'online', last_heartbeat_at: now }).where('id', '=', agent.id).where('status', '=', 'offline').returningAll().executeTakeFirst();
  if (back) {
    ctx.log.info({ agent: agent.id }, 'agent is back online');
    await cameBack(ctx, back);
    return;
  }
  await ctx.db.updateTable('agents').set({ last_heartbeat_at: now }).where('id', '=', agent.id).execute();
}

/**
 * A job the server believes the agent runs but the agent does not list in its heartbeat (a job message
 * lost with a server that died, say) is interrupted and queued again. Only jobs quiet for a whole
 * heartbeat timeout count, so a job on its way to the agent is not taken for lost.
 */
export async function reconcileRunning(ctx: ServerContext, agent: Agent, running: readonly string[]): Promise<void> {
  const quietSince = ctx.now() - ctx.settings.heartbeatTimeoutSeconds * 1000;
  let query = ctx.db.selectFrom('jobs').select('id').where('agent_id', '=', agent.id).where('status', 'in', ['running', 'paused']).where('updated_at', '<', quietSince);
  if (running.length > 0) query = query.where('id', 'not in', [...running]);
  const lost = await query.execute();
  if (lost.length === 0) return;
  for (const { id } of lost) await interruptJob(ctx, agent.id, id, 'the agent was not running it');
  await resumeAgentJobs(ctx, agent.id);
}

/** Marks silent agents offline; one server wins each agent (a conditional UPDATE). */
export async function markSilentAgentsOffline(ctx: ServerContext): Promise<Agent[]> {
  const limit = ctx.now() - ctx.settings.heartbeatTimeoutSeconds * 1000;
  const gone = await ctx.db.updateTable('agents').set({ status: 'offline' }).where('status', '=', 'online').where('last_heartbeat_at', '<', limit).returningAll().execute();
  for (const agent of gone) {
    ctx.log.warn({ agent: agent.id, hostname: agent.hostname }, 'agent is offline');
    const silentFor = Math.round((ctx.now() - agent.last_heartbeat_at) / 1000);
    await interruptAgentJobs(ctx, agent.id, `the agent went offline (no heartbeat for ${silentFor} s)`);
    await raiseAlert(ctx, agent.user_id, 'agent-offline', agent.id, `agent ${agent.hostname} is offline: no heartbeat for ${silentFor} s`);
    await ctx.events.append({ userId: agent.user_id, type: 'agent.updated', data: apiAgent(agent) });
  }
  return gone;
}

export async function agentOfUser(ctx: ServerContext, userId: string, agentId: string | undefined): Promise<Agent> {
  if (!agentId) throw new HttpError(400, 'which agent? send its id (x-coffer-agent header or ?agent=)');
  const agent = await ctx.db.selectFrom('agents').selectAll().where('id', '=', agentId).where('user_id', '=', userId).executeTakeFirst();
  if (!agent) throw new HttpError(404, 'agent not found; register again');
  return agent;
}
