// Restoring snapshots crafted by someone who holds the passphrase: a restore writes only inside its
// target, under the exact bytes of each name, and its work stays bounded.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { coffer, ok, tempDir } from './helpers/cli.ts';
import { craftNode, Crafter } from './helpers/craft.ts';

const isRoot = process.getuid?.() === 0;

function emptyRepository(dir: string): string {
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  return repo;
}

async function craft(repo: string, build: (c: Crafter) => Buffer | Promise<Buffer>, fields: Record<string, unknown> = {}): Promise<string> {
  const crafter = await Crafter.open(repo);
  try {
    return await crafter.snapshot(await build(crafter), fields);
  } finally {
    await crafter.close();
  }
}

/** Reads `parts.join('/')` below `dir` one directory at a time: the whole path is longer than PATH_MAX. */
function readDeep(dir: string, parts: string[]): string {
  let fd = fs.openSync(dir, 'r');
  for (const part of parts.slice(0, -1)) {
    const next = fs.openSync(`/proc/self/fd/${fd}/${part}`, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    fs.closeSync(fd);
    fd = next;
  }
  try {
    return fs.readFileSync(`/proc/self/fd/${fd}/${parts.at(-1)}`, 'utf8');
  } finally {
    fs.closeSync(fd);
  }
}

/** Removes a tree too deep for path-based removal (GNU rm walks with openat). */
function removeDeep(dir: string): void {
  spawnSync('rm', ['-rf', dir]);
}

test('special files are made under their raw names, never through a symlink of the snapshot', async (t) => {
  const dir = tempDir(t);
  const repo = emptyRepository(dir);
  const outside = path.join(dir, 'outside');
  fs.mkdirSync(outside);
  const replacement = Buffer.from('\ufffd');
  const invalid = Buffer.from([0xff]);
  // 'EF BF BD' is what the byte 0xff turns into when a name is decoded as UTF-8 and encoded again.
  assert.deepEqual(Buffer.from(invalid.toString()), replacement);
  const id = await craft(repo, (c) =>
    c.tree([
      craftNode.symlink(replacement, outside),
      craftNode.dir(invalid, c.tree([craftNode.fifo('fifo'), craftNode.chardev('null', (1n << 8n) | 3n), craftNode.symlink('link', '/etc/passwd')])),
    ]),
  );
  const target = path.join(dir, 'target');
  const r = coffer(['restore', '--repo', repo, id, '--target', target]);
  assert.deepEqual(fs.readdirSync(outside), [], 'nothing was made outside the target');
  assert.equal(r.code, 0, r.stderr);
  const inside = Buffer.concat([Buffer.from(`${target}/`), invalid, Buffer.from('/')]);
  assert.ok(fs.lstatSync(Buffer.concat([inside, Buffer.from('fifo')])).isFIFO());
  if (isRoot) assert.equal(fs.lstatSync(Buffer.concat([inside, Buffer.from('null')])).rdev, fs.statSync('/dev/null').rdev);
  assert.equal(fs.readlinkSync(Buffer.concat([inside, Buffer.from('link')])), '/etc/passwd');
  assert.equal(fs.readlinkSync(Buffer.concat([Buffer.from(`${target}/`), replacement])), outside);
  assert.deepEqual(fs.readdirSync(Buffer.concat([inside])).sort(), ['fifo', 'link', 'null'].filter((n) => isRoot || n !== 'null'), 'no temporary names are left');
});

test('a tree that reuses its subtrees 2^40 times is refused before anything is written', async (t) => {
  const dir = tempDir(t);
  const repo = emptyRepository(dir);
  const id = await craft(repo, (c) => {
    let tree = c.tree([craftNode.fifo('leaf')]);
    for (let level = 0; level < 40; level++) tree = c.tree([craftNode.dir('a', tree), craftNode.dir('b', tree)]);
    return tree;
  });
  const target = path.join(dir, 'target');
  const started = performance.now();
  const r = coffer(['restore', '--repo', repo, id, '--target', target]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^coffer: refusing to restore: the tree holds 3298534883326 paths built from only 81 stored entries .*crafted\n$/);
  assert.ok(!fs.existsSync(target), 'nothing was written');
  assert.ok(performance.now() - started < 10_000);
});

test('a file whose size does not match its chunks, 15 TiB say, leaves nothing behind', async (t) => {
  const dir = tempDir(t);
  const repo = emptyRepository(dir);
  const id = await craft(repo, (c) => {
    const chunk = c.data(Buffer.from('small'));
    return c.tree([craftNode.file('huge', [chunk], 15 * 2 ** 40, { sparse: true }), craftNode.file('fine', [chunk], 5)]);
  });
  const target = path.join(dir, 'target');
  const r = coffer(['restore', '--repo', repo, id, '--target', target]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /\/huge: chunks add up to 5 bytes, the snapshot says 16492674416640/);
  assert.deepEqual(fs.readdirSync(target), ['fine']);
  assert.equal(fs.readFileSync(path.join(target, 'fine'), 'utf8'), 'small');
});

test('trees 3,000 levels deep restore, list, dump and find; deeper than 4,096 levels is refused', async (t) => {
  const dir = tempDir(t);
  const repo = emptyRepository(dir);
  const nested = (c: Crafter, depth: number, content = 'deep'): Buffer => {
    let tree = c.tree([craftNode.file('bottom', [c.data(Buffer.from(content))], 4)]);
    for (let level = 0; level < depth; level++) tree = c.tree([craftNode.dir('d', tree)]);
    return tree;
  };
  const deep = await craft(repo, (c) => nested(c, 3000));
  const target = path.join(dir, 'target');
  t.after(() => removeDeep(target));
  ok(['restore', '--repo', repo, deep, '--target', target]);
  const bottom = `${'d/'.repeat(3000)}bottom`;
  assert.equal(readDeep(target, bottom.split('/')), 'deep', 'the bottom file is restored');
  const ls = ok(['ls', '--repo', repo, deep, '--recursive']).stdout.trim().split('\n');
  assert.equal(ls.length, 3001);
  assert.equal(ls.at(-1), `/${bottom}`);
  const tar = spawnSync('tar', ['-tf', '-'], { input: ok(['dump', '--repo', repo, deep, '/']).stdout, encoding: 'utf8', maxBuffer: 1 << 28 });
  assert.equal(tar.stdout.trim().split('\n').length, 3001);
  const changed = await craft(repo, (c) => nested(c, 3000, 'DEEP'));
  assert.match(ok(['diff', '--repo', repo, deep, changed]).stdout, new RegExp(`^M +/${bottom}$`, 'm'));
  assert.match(ok(['find', '--repo', repo, '--snapshot', deep, 'bottom']).stdout, new RegExp(`^ +/${bottom}$`, 'm'));

  const tooDeep = await craft(repo, (c) => nested(c, 5000));
  for (const command of [['restore', tooDeep, '--target', path.join(dir, 'never')], ['ls', tooDeep, '--recursive'], ['find', '--snapshot', tooDeep, 'bottom'], ['stats', tooDeep], ['stats', '--mode', 'raw-data', tooDeep], ['check']]) {
    const r = coffer([...command.slice(0, 1), '--repo', repo, ...command.slice(1)]);
    assert.equal(r.code, 1, `${command[0]}: ${r.stderr}`);
    assert.match(r.stdout + r.stderr, /nest deeper than 4096 levels/, command[0]);
  }
});
