// The plaintext parts of a repository, config and key files, rewritten by a storage host: a changed
// config is refused as tampered with, absurd chunker sizes never reach the chunker, and key files
// that are garbage, greedy or decoys cost a warning, not the repository.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { contentId } from '../src/format/crypto.ts';
import { coffer, DATA_DIR, ok, tempDir, type RunResult } from './helpers/cli.ts';
import { DaemonProcess } from './helpers/daemon.ts';

function repository(dir: string): { repo: string; source: string } {
  const repo = path.join(dir, 'repo');
  const source = path.join(dir, 'source');
  fs.mkdirSync(source);
  fs.writeFileSync(path.join(source, 'a.txt'), 'x'.repeat(256 * 1024));
  ok(['init', '--repo', repo]);
  return { repo, source };
}

function rewriteConfig(repo: string, change: (config: Record<string, unknown>) => void): void {
  const file = path.join(repo, 'config');
  const config = JSON.parse(fs.readFileSync(file, 'utf8'));
  change(config);
  fs.chmodSync(file, 0o600);
  fs.writeFileSync(file, JSON.stringify(config));
}

function oneLine(r: RunResult, pattern: RegExp, code = 1): void {
  assert.match(r.stderr, pattern);
  assert.equal(r.code, code, r.stderr);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
}

test('a config whose chunker sizes were changed is refused as tampered with; absurd sizes never reach the chunker', (t) => {
  const { repo, source } = repository(tempDir(t));
  const original = fs.readFileSync(path.join(repo, 'config'));
  assert.match(original.toString(), /"mac": "[0-9a-f]{64}"/, 'a new repository has an authenticated config');

  rewriteConfig(repo, (c) => (c.chunker = { algorithm: 'fastcdc-gear32', min: 65536, avg: 131072, max: 262144 }));
  oneLine(coffer(['backup', '--repo', repo, source]), /^coffer: the config of .* fails its authentication check: the repository may have been tampered with/);
  for (const sizes of [[16, 32, 64], [524288, 1048576, 2 ** 45]]) {
    rewriteConfig(repo, (c) => (c.chunker = { algorithm: 'fastcdc-gear32', min: sizes[0], avg: sizes[1], max: sizes[2] }));
    oneLine(coffer(['backup', '--repo', repo, source]), /^coffer: repository config is damaged: chunker sizes .* are out of bounds/);
  }
  // Removing the MAC (a downgrade to what 0.1.0 wrote) leaves only the sizes 0.1.0 used.
  fs.writeFileSync(path.join(repo, 'config'), original);
  rewriteConfig(repo, (c) => {
    delete c.mac;
    c.chunker = { algorithm: 'fastcdc-gear32', min: 65536, avg: 131072, max: 262144 };
  });
  oneLine(coffer(['snapshots', '--repo', repo]), /fails its authentication check: the repository may have been tampered with/);
  rewriteConfig(repo, (c) => (c.chunker = { algorithm: 'fastcdc-gear32', min: 524288, avg: 1048576, max: 8388608 }));
  ok(['backup', '--repo', repo, source]);
});

test('replicas whose configs differ are refused', (t) => {
  const dir = tempDir(t);
  const a = path.join(dir, 'a');
  ok(['init', '--repo', a]);
  const b = path.join(dir, 'b');
  fs.cpSync(a, b, { recursive: true });
  rewriteConfig(b, (c) => (c.created = '2000-01-01T00:00:00.000Z'));
  oneLine(coffer(['snapshots', '--repo', a, '--repo', b]), /the config of .* differs from the one of .*; the repository may have been tampered with/);
});

test('garbage and greedy key files are skipped with a warning; the passphrase still opens the repository', (t) => {
  const { repo } = repository(tempDir(t));
  const keys = path.join(repo, 'keys');
  const real = JSON.parse(fs.readFileSync(path.join(keys, fs.readdirSync(keys)[0]!), 'utf8'));
  const plant = (content: string): string => {
    const id = contentId(Buffer.from(content));
    fs.writeFileSync(path.join(keys, id), content);
    return id;
  };
  const garbage = plant('garbage, not even JSON');
  const greedySalt = plant(JSON.stringify({ ...real, kdf: { ...real.kdf, salt: { length: 2e9 } } }));
  const wrongTypes = plant(JSON.stringify({ ...real, nonce: 12, host: ['x'] }));
  fs.writeFileSync(path.join(keys, '0000'), 'not even a key name');
  const r = coffer(['snapshots', '--repo', repo]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`skipping keys/${garbage}: keys/${garbage} is not valid JSON`));
  assert.match(r.stderr, new RegExp(`skipping keys/${greedySalt}: .*its kdf.salt is missing or malformed`));
  assert.match(r.stderr, new RegExp(`skipping keys/${wrongTypes}: .*its (nonce|host) is missing or malformed`));
  assert.match(r.stderr, /ignoring "keys\/0000"/);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
  const list = coffer(['key', 'list', '--repo', repo]);
  assert.equal(list.code, 0, list.stderr);
});

test('decoy key files at the highest KDF cost: unlocking stays bounded, and the key that worked is tried first', (t) => {
  const { repo } = repository(tempDir(t));
  const keys = path.join(repo, 'keys');
  const realId = fs.readdirSync(keys)[0]!;
  const real = JSON.parse(fs.readFileSync(path.join(keys, realId), 'utf8'));
  // Same wrapped data under other KDF settings: each takes the longest time allowed, then fails.
  for (let i = 0; i < 3; i++) {
    const decoy = JSON.stringify({ ...real, host: `decoy ${i}`, kdf: { ...real.kdf, memory: 65536, passes: 64 } });
    fs.writeFileSync(path.join(keys, contentId(Buffer.from(decoy))), decoy);
  }
  const wrong = coffer(['snapshots', '--repo', repo], { env: { COFFER_PASSWORD: 'not the passphrase' } });
  oneLine(wrong, /^coffer: wrong passphrase: no key of this repository opens with it \(2 costly key files were not tried: .*coffer key remove\)/, 12);
  ok(['snapshots', '--repo', repo]);
  const hints = JSON.parse(fs.readFileSync(path.join(DATA_DIR, 'key-hints.json'), 'utf8'));
  assert.equal(Object.values(hints).includes(realId), true, 'the key that opened the repository is remembered outside it');
  assert.equal(fs.statSync(path.join(DATA_DIR, 'key-hints.json')).mode & 0o777, 0o600);
});

test('the daemon too names a key file it skips, in the job log, and tries the key that worked first next time', async (t) => {
  const { repo, source } = repository(tempDir(t));
  const keys = path.join(repo, 'keys');
  const realId = fs.readdirSync(keys)[0]!;
  const garbage = contentId(Buffer.from('garbage, not even JSON'));
  fs.writeFileSync(path.join(keys, garbage), 'garbage, not even JSON');
  const daemon = await DaemonProcess.start(t, { config: `plans:\n  nightly:\n    repos: [${repo}]\n    paths: [${source}]\nretries: { max: 0 }\n` });
  const job = await daemon.run('nightly');
  await daemon.waitFor(/\(plan nightly\) completed/);
  const log = daemon.cli(['logs', String(job)]).stdout;
  assert.match(log, new RegExp(`skipping keys/${garbage}: keys/${garbage} is not valid JSON`));
  const hints = JSON.parse(fs.readFileSync(path.join(daemon.dataDir, 'key-hints.json'), 'utf8'));
  assert.equal(Object.values(hints).includes(realId), true, 'the key that opened the repository is remembered');
});
