// The fleet server under load (`npm run bench -- --fleet`): simulated agents register, keep a WebSocket
// open, heartbeat and stream progress of a running job every second, while dashboards read the API and
// follow the live events. Runs against SQLite and against PostgreSQL (a temporary cluster), and reports
// API latency (p50, p99), the server process's CPU and memory, and whether every progress event reached
// the dashboard (each carries a sequence number; a dashboard reconnects half-way with Last-Event-ID).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { PROTOCOL_VERSION, type ToAgent } from '../src/agent/protocol.ts';
import { startPostgres } from '../test/helpers/postgres.ts';

const MAIN = path.join(import.meta.dirname, '../src/cli/main.ts');
const TICKS = 100; // USER_HZ on Linux

export interface FleetBenchOptions {
  readonly agents: number;
  readonly seconds: number;
  readonly dashboards: number;
  readonly backends: readonly ('sqlite' | 'postgres')[];
  readonly output: string;
}

interface Result {
  readonly backend: string;
  readonly agents: number;
  readonly seconds: number;
  readonly requests: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly cpuPercent: number;
  readonly rssMaxMiB: number;
  readonly progressSent: number;
  readonly progressReceived: number;
  readonly missing: number;
  readonly duplicates: number;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function percentile(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : 0;
}

function procStats(pid: number): { ticks: number; rssKiB: number } {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  const rss = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return { ticks, rssKiB: Number(rss ?? 0) };
}

async function startServer(dataDir: string, databaseUrl: string | undefined): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [MAIN, 'server', '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--log-file', path.join(dataDir, 'server.log'), ...(databaseUrl ? ['--database-url', databaseUrl] : [])], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, COFFER_LOG_LEVEL: 'warn' },
  });
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/[^\s]+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.stderr!.on('data', (d) => (out += d));
    child.on('exit', (code) => reject(new Error(`the server exited (${code}): ${out}`)));
  });
  return { child, url };
}

class Api {
  readonly url: string;
  cookie = '';
  csrf = '';
  readonly latencies: number[] = [];

  constructor(url: string) {
    this.url = url;
  }

  async call<T>(method: string, p: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    const started = performance.now();
    const res = await fetch(this.url + p, {
      method,
      headers: { ...(this.cookie ? { cookie: this.cookie } : {}), ...(this.csrf && method !== 'GET' ? { 'x-csrf-token': this.csrf } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    this.latencies.push(performance.now() - started);
    if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${text}`);
    const cookie = res.headers.get('set-cookie');
    if (cookie) this.cookie = cookie.split(';')[0]!;
    return (text ? JSON.parse(text) : undefined) as T;
  }
}

/** One simulated agent: WebSocket, heartbeats, and progress with a sequence number for each job it gets. */
class SimAgent {
  sent = 0;
  private ws: WebSocket | undefined;
  private timers: NodeJS.Timeout[] = [];

  async start(url: string, key: string, api: Api, index: number): Promise<string> {
    const welcome = await api.call<{ agentId: string }>('POST', '/api/agent/register', { protocol: PROTOCOL_VERSION, hostname: `sim-${index}`, os: 'Linux bench', version: '9.9.9', capacity: 1 }, { authorization: `Bearer ${key}` });
    const ws = new WebSocket(`${url.replace('http', 'ws')}/api/agent/ws`, { headers: { authorization: `Bearer ${key}`, 'x-coffer-agent': welcome.agentId } });
    this.ws = ws;
    await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)));
    // Spread the agents' seconds so they do not all write at the same instant.
    const offset = Math.random() * 1000;
    this.timers.push(setInterval(() => ws.send(JSON.stringify({ type: 'heartbeat', running: [] })), 10_000));
    ws.on('message', (data) => {
      const m = JSON.parse(String(data)) as ToAgent;
      if (m.type !== 'job') return;
      const jobId = m.job.id;
      setTimeout(() => {
        this.timers.push(
          setInterval(() => {
            this.sent++;
            const progress = { stage: 'uploading', elapsedMs: 0, filesDone: this.sent, bytesDone: this.sent * 1000, filesTotal: 1e6, bytesTotal: 1e9, totalsKnown: true, bytesPerSecond: 1000, currentFile: `/data/file-${this.sent}`, warnings: 0, destinations: [], recentFiles: [] };
            ws.send(JSON.stringify({ type: 'progress', jobId, progress }));
          }, 1000),
        );
      }, offset);
    });
    return welcome.agentId;
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
    this.ws?.close();
  }
}

/** Follows /api/events, counting each job's progress sequence numbers; reconnects once with Last-Event-ID. */
class Dashboard {
  readonly seen = new Map<string, number[]>();
  /** From the first event on: whatever happened before the stream connected is replayed. */
  private lastId = '0';
  private controller = new AbortController();
  private done: Promise<void> = Promise.resolve();

  follow(url: string, cookie: string): void {
    this.controller = new AbortController();
    const signal = this.controller.signal;
    this.done = (async () => {
      const res = await fetch(`${url}/api/events`, { headers: { cookie, ...(this.lastId ? { 'last-event-id': this.lastId } : {}) }, signal });
      let buffer = '';
      try {
        for await (const chunk of res.body!) {
          buffer += Buffer.from(chunk).toString();
          let end: number;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const frame = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const id = /^id: (\d+)$/m.exec(frame)?.[1];
            if (id) this.lastId = id;
            if (!/^event: job.progress$/m.test(frame)) continue;
            const data = JSON.parse(/^data: (.*)$/m.exec(frame)![1]!) as { jobId: string; progress: { filesDone: number } };
            const list = this.seen.get(data.jobId) ?? [];
            list.push(data.progress.filesDone);
            this.seen.set(data.jobId, list);
          }
        }
      } catch {
        // aborted
      }
    })();
  }

  async reconnect(url: string, cookie: string): Promise<void> {
    this.controller.abort();
    await this.done;
    await sleep(2000); // events keep coming while it is away
    this.follow(url, cookie);
  }

  async stop(): Promise<void> {
    this.controller.abort();
    await this.done;
  }
}

async function runOne(backend: 'sqlite' | 'postgres', options: FleetBenchOptions): Promise<Result> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-fleet-bench-'));
  const pg = backend === 'postgres' ? await startPostgres() : undefined;
  const { child, url } = await startServer(path.join(dir, 'server'), pg ? await pg.createDatabase() : undefined);
  const agents: SimAgent[] = [];
  try {
    const admin = new Api(url);
    const signup = await admin.call<{ csrfToken: string }>('POST', '/api/auth/signup', { email: 'bench@example.com', password: 'benchmark password' });
    admin.csrf = signup.csrfToken;
    const { key } = await admin.call<{ key: string }>('POST', '/api/keys', { name: 'bench' });
    const dest = await admin.call<{ id: string }>('POST', '/api/destinations', { name: 'disk', kind: 'location', location: '/srv/backup' });
    // The dashboard follows from the start, so it must see every progress event of every job.
    const dashboard = new Dashboard();
    dashboard.follow(url, admin.cookie);
    const setup = new Api(url);
    for (let i = 0; i < options.agents; i++) {
      const agent = new SimAgent();
      agents.push(agent);
      const agentId = await agent.start(url, key, setup, i);
      const plan = await admin.call<{ id: string }>('POST', '/api/plans', { name: `plan-${i}`, agentId, paths: ['/data'], destinations: [dest.id] });
      await admin.call('POST', `/api/plans/${plan.id}/run`);
    }
    const readers = Array.from({ length: options.dashboards }, () => Object.assign(new Api(url), { cookie: admin.cookie }));
    const start = procStats(child.pid!);
    const started = Date.now();
    let rssMax = start.rssKiB;
    let reconnected = false;
    const jobs = (await admin.call<{ jobs: { id: string }[] }>('GET', '/api/jobs?limit=500')).jobs;
    while (Date.now() - started < options.seconds * 1000) {
      await Promise.all(
        readers.map(async (r, i) => {
          const pick = jobs[(Date.now() + i) % jobs.length]!;
          await r.call('GET', i % 3 === 0 ? '/api/agents' : i % 3 === 1 ? '/api/jobs?status=running&limit=50' : `/api/jobs/${pick.id}`);
        }),
      );
      rssMax = Math.max(rssMax, procStats(child.pid!).rssKiB);
      if (!reconnected && Date.now() - started > (options.seconds * 1000) / 2) {
        reconnected = true;
        await dashboard.reconnect(url, admin.cookie);
      }
      await sleep(100);
    }
    const end = procStats(child.pid!);
    const seconds = (Date.now() - started) / 1000;
    for (const a of agents) a.stop();
    // Every progress event sent must reach the dashboard; wait for the last ones (up to 30 s).
    const sentTotal = agents.reduce((n, a) => n + a.sent, 0);
    const receivedNow = (): number => [...dashboard.seen.values()].reduce((n, l) => n + new Set(l).size, 0);
    for (let waited = 0; waited < 30_000 && receivedNow() < sentTotal; waited += 250) await sleep(250);
    await dashboard.stop();
    const latencies = readers.flatMap((r) => r.latencies).sort((a, b) => a - b);
    let received = 0;
    let duplicates = 0;
    for (const list of dashboard.seen.values()) {
      const unique = new Set(list);
      received += unique.size;
      duplicates += list.length - unique.size;
    }
    const sent = sentTotal;
    const missing = sent - received;
    return {
      backend,
      agents: options.agents,
      seconds: Math.round(seconds),
      requests: latencies.length,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      max: latencies[latencies.length - 1] ?? 0,
      cpuPercent: ((end.ticks - start.ticks) / TICKS / seconds) * 100,
      rssMaxMiB: rssMax / 1024,
      progressSent: sent,
      progressReceived: received,
      missing,
      duplicates,
    };
  } finally {
    for (const a of agents) a.stop();
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    pg?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export async function runFleetBench(options: FleetBenchOptions): Promise<void> {
  const results: Result[] = [];
  for (const backend of options.backends) {
    process.stderr.write(`fleet: ${options.agents} agents for ${options.seconds} s on ${backend}…\n`);
    const r = await runOne(backend, options);
    process.stderr.write(`  p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms, CPU ${r.cpuPercent.toFixed(0)}%, RSS ${r.rssMaxMiB.toFixed(0)} MiB, progress ${r.progressReceived}/${r.progressSent}, missing ${r.missing}\n`);
    results.push(r);
  }
  const rows = results.map(
    (r) =>
      `| ${r.backend} | ${r.agents} | ${r.seconds} s | ${r.requests} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.max.toFixed(0)} | ${r.cpuPercent.toFixed(0)}% | ${r.rssMaxMiB.toFixed(0)} MiB | ${r.progressSent} | ${r.progressReceived} | ${r.missing} | ${r.duplicates} |`,
  );
  const text = `# Fleet server load

\`npm run bench -- --fleet\` (${new Date().toISOString().slice(0, 16)} UTC, ${os.cpus().length} cores, load average at start ${os.loadavg()[0]!.toFixed(1)}).
Simulated agents each hold a WebSocket, heartbeat every 10 s and stream the progress of a running job
every second; ${options.dashboards} dashboards read the API (agents, running jobs, one job) in a loop and one
follows /api/events, reconnecting half-way with Last-Event-ID. Latency is that of the dashboards' API
calls; CPU and memory are the server process's (one process; SQLite in its data directory, or a local
PostgreSQL 15 with pg-boss). Every progress message carries a per-agent sequence number: "missing" is
sent minus the distinct messages the dashboard's event stream delivered (0: no event was lost, across the
reconnect too), "duplicates" the ones delivered twice.

| database | agents | duration | API requests | p50 ms | p99 ms | max ms | server CPU | server RSS max | progress sent | received | missing | duplicates |
|---|---|---|---|---|---|---|---|---|---|---|---|---|
${rows.join('\n')}
`;
  fs.writeFileSync(options.output, text);
  process.stderr.write(`wrote ${options.output}\n`);
}
