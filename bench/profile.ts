// `node bench/profile.ts [--out DIR] -- <coffer arguments>`: runs the compiled CLI once with a CPU
// profile of every thread and the memory of every isolate sampled, and prints what bench/PROFILE.md
// quotes: CPU-seconds by category, peak RSS and what it is made of. Made for a shared machine: it gives
// CPU-seconds (the kernel's rusage), never wall times.
//
// V8 samples by wall time, so a thread blocked in a system call (or waiting for a core) is sampled
// where it stands: system calls get the kernel's own CPU time (rusage sys), and the user time is split
// by the samples outside them. Argon2id runs on libuv's thread pool, which V8 does not sample.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { TIME_BIN } from './measure.ts';
import { NODE_FLAGS } from '../src/node-flags.ts';
import { COFFER_CLI } from './tools.ts';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string };
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

interface MemorySample {
  readonly t: number;
  readonly thread: number;
  readonly rss: number;
  readonly heapTotal: number;
  readonly external: number;
  readonly arrayBuffers: number;
}

const SYSCALLS = 'system calls';
const SAMPLER = 'sampler';
/** Frames that only count near the leaf: the CLI's whole command runs below main.js's module evaluation. */
const NEAR_LEAF = 4;
const FS_CALL = /^(open|read|write|close|lstat|stat|fstat|readdir|opendir|mkdir|rename|fchown|fchmod|futimes|utimes|fsync|ftruncate|link|symlink|readlink|unlink|rm|readFile|writeFile|exists|readv|writev|lutimes|lchown|chmod|realpath|access|pread|pwrite)(Sync)?$/;

/** Categories in the order they are tried on each frame, from the leaf up. */
const CATEGORIES: readonly { name: string; test: (fn: string, url: string, depth: number) => boolean }[] = [
  { name: 'GC', test: (fn) => fn === '(garbage collector)' },
  { name: SAMPLER, test: (fn) => fn === 'memoryUsage' },
  { name: 'zstd', test: (fn, url) => /zstd/i.test(fn) || /compression\.[jt]s$/.test(url) || url === 'node:zlib' },
  { name: 'HMAC/SHA', test: (fn) => /hmac|createHash|blobId|contentId|^digest$|^hash$/i.test(fn) },
  { name: 'AES-GCM', test: (fn) => /cipher|aeadSeal|aeadOpen|openBlob|AuthTag|sealObject|openObject|packKey|deriveKey|hkdf/i.test(fn) },
  { name: 'chunking', test: (fn, url) => /chunker\.[jt]s$/.test(url) || fn === 'nextCut' },
  { name: SYSCALLS, test: (fn, url) => FS_CALL.test(fn) || (url.startsWith('node:fs') && fn !== '') },
  { name: 'messages', test: (fn, url) => /postMessage|structuredClone|onmessage|serialize/i.test(fn) || /internal\/worker/.test(url) },
  { name: 'trees', test: (_fn, url) => /(tree|tree-saver)\.[jt]s$/.test(url) },
  {
    name: 'module loading',
    test: (fn, url, depth) => depth < NEAR_LEAF && (/internal\/modules/.test(url) || /^wasm-|^compileSourceTextModule$|^compileForInternalLoader$|^requireBuiltin$/.test(fn)),
  },
];

/** Self time of a profile by category (microseconds); idle time left out. */
function categorize(profile: CpuProfile): Map<string, number> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const known = new Map<number, string>();
  const categoryOf = (leaf: number): string => {
    let found = known.get(leaf);
    if (found !== undefined) return found;
    found = 'other JS';
    let depth = 0;
    for (let id: number | undefined = leaf; id !== undefined; id = parent.get(id), depth++) {
      const { functionName, url } = byId.get(id)!.callFrame;
      const hit = CATEGORIES.find((c) => c.test(functionName, url, depth));
      if (hit) {
        found = hit.name;
        break;
      }
      if (depth === 0 && functionName === '(idle)') {
        found = 'idle';
        break;
      }
    }
    known.set(leaf, found);
    return found;
  };
  const totals = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const category = categoryOf(id);
    if (category !== 'idle') totals.set(category, (totals.get(category) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  return totals;
}

/** At the highest RSS: each isolate's last sample within a second before it (workers sample on their own). */
function memoryAtPeak(samples: readonly MemorySample[]): string {
  const MiB = 2 ** 20;
  const peak = samples.reduce((a, b) => (b.rss > a.rss ? b : a));
  const near = new Map<number, MemorySample>();
  for (const s of samples) if (s.t >= peak.t - 1000 && s.t <= peak.t) near.set(s.thread, s);
  const isolates = [...near.values()].sort((a, b) => a.thread - b.thread);
  const sum = (f: (s: MemorySample) => number): number => isolates.reduce((total, s) => total + f(s), 0);
  const heaps = sum((s) => s.heapTotal);
  const external = sum((s) => s.external);
  const mib = (bytes: number): string => (bytes / MiB).toFixed(0);
  return (
    `sampled peak RSS ${mib(peak.rss)} MiB, ${isolates.length} isolates: V8 heaps ${mib(heaps)} MiB (${isolates.map((s) => `thread ${s.thread}: ${mib(s.heapTotal)}`).join(', ')}), ` +
    `ArrayBuffers ${mib(sum((s) => s.arrayBuffers))} MiB, other external ${mib(external - sum((s) => s.arrayBuffers))} MiB, outside V8 (code, stacks, malloc) ${mib(peak.rss - heaps - external)} MiB`
  );
}

const { values, positionals } = parseArgs({ options: { out: { type: 'string' } }, allowPositionals: true });
if (positionals.length === 0) {
  process.stderr.write('usage: node bench/profile.ts [--out DIR] -- <coffer arguments>\n');
  process.exit(2);
}
const out = values.out ?? mkdtempSync(join(tmpdir(), 'coffer-profile-'));
mkdirSync(out, { recursive: true });
const memoryLog = join(out, 'memory.jsonl');
const timeFile = join(out, 'rusage.txt');
const run = spawnSync(
  TIME_BIN,
  ['-f', '%U %S %M', '-o', timeFile, process.execPath, ...NODE_FLAGS, '--import', join(import.meta.dirname, 'profile-sampler.ts'), '--cpu-prof', `--cpu-prof-dir=${join(out, 'cpu')}`, COFFER_CLI, ...positionals],
  { env: { ...process.env, COFFER_PROFILE_MEMORY_LOG: memoryLog }, stdio: ['inherit', 'ignore', 'inherit'] },
);
if (run.status !== 0) process.stderr.write(`coffer exited with ${run.status ?? run.signal}; the figures below are of what it did\n`);

const [user, sys, maxRssKiB] = readFileSync(timeFile, 'utf8').trim().split('\n').at(-1)!.split(' ').map(Number) as [number, number, number];
const all = new Map<string, number>();
for (const file of readdirSync(join(out, 'cpu')).filter((f) => f.endsWith('.cpuprofile'))) {
  for (const [category, us] of categorize(JSON.parse(readFileSync(join(out, 'cpu', file), 'utf8')) as CpuProfile)) all.set(category, (all.get(category) ?? 0) + us);
}
const userSide = [...all].filter(([c]) => c !== SYSCALLS && c !== SAMPLER).sort((a, b) => b[1] - a[1]);
const userSamples = userSide.reduce((total, [, us]) => total + us, 0);
console.log(`CPU ${(user + sys).toFixed(2)} s (user ${user.toFixed(2)}, sys ${sys.toFixed(2)}), peak RSS ${(maxRssKiB / 1024).toFixed(0)} MiB`);
console.log(`user time by category (CPU-s): ${userSide.map(([c, us]) => `${c} ${((us / userSamples) * user).toFixed(2)}`).join(', ')}; system calls and page faults ${sys.toFixed(2)}`);
console.log(memoryAtPeak(readFileSync(memoryLog, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as MemorySample)));
console.log(`profiles and samples in ${out}`);
