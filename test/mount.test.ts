// `coffer mount` through FUSE (fuse-native, an optional dependency): read-only, every snapshot below the
// mount point; where FUSE cannot be used, one line that points to `serve webdav`.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { test } from 'node:test';
import { coffer, cofferAsync, ok, tempDir } from './helpers/cli.ts';
import { seededBytes } from './helpers/tree.ts';

function fuseProblem(): string | undefined {
  try {
    fs.closeSync(fs.openSync('/dev/fuse', 'r+'));
  } catch (err) {
    return `/dev/fuse cannot be opened here (${(err as NodeJS.ErrnoException).code})`;
  }
  try {
    createRequire(import.meta.url)('fuse-native');
  } catch (err) {
    return `fuse-native is not installed (${(err as Error).message.split('\n')[0]})`;
  }
  if (spawnSync('fusermount', ['-V']).status !== 0) return 'fusermount is not installed';
  return undefined;
}

const problem = fuseProblem();

test('mount: every snapshot read-only, files byte for byte, symlinks, writes refused, unmounted on Ctrl-C', { skip: problem ?? false, timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  const source = path.join(dir, 'src');
  fs.mkdirSync(path.join(source, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(source, 'sub/big.bin'), seededBytes('mount', 6 << 20));
  fs.writeFileSync(path.join(source, 'a.txt'), 'hello, fuse\n');
  fs.symlinkSync('a.txt', path.join(source, 'link'));
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  ok(['backup', '--repo', repo, source]);
  const mnt = path.join(dir, 'mnt');
  fs.mkdirSync(mnt);
  const mount = cofferAsync(['mount', '--repo', repo, mnt]);
  let unmounted = false;
  t.after(async () => {
    if (!unmounted) {
      mount.child.kill('SIGINT');
      await mount.done;
      spawnSync('fusermount', ['-u', '-z', mnt]);
    }
  });
  for (let i = 0; i < 200 && !/mounted read-only/.test(mount.output().stdout); i++) await new Promise((r) => setTimeout(r, 100));
  assert.match(mount.output().stdout, /snapshots mounted read-only at/, mount.output().stderr);

  // File-system calls from this process would wait on the mount's own event loop: use child processes.
  const sh = (script: string): { status: number | null; stdout: string; stderr: string } => {
    const r = spawnSync('sh', ['-c', script], { encoding: 'utf8' });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const top = sh(`ls ${mnt}`).stdout.trim().split('\n');
  assert.equal(top.length, 2);
  assert.equal(top[1], 'latest');
  const inside = `${mnt}/latest${source}`;
  assert.deepEqual(sh(`ls ${inside}`).stdout.trim().split('\n'), ['a.txt', 'link', 'sub']);
  assert.equal(sh(`cmp ${inside}/sub/big.bin ${source}/sub/big.bin && echo same`).stdout, 'same\n');
  assert.equal(sh(`cat ${inside}/link`).stdout, 'hello, fuse\n', 'a symlink is followed inside the snapshot');
  assert.equal(sh(`readlink ${inside}/link`).stdout, 'a.txt\n');
  assert.equal(sh(`stat -c %a ${inside}/a.txt`).stdout, `${(fs.statSync(path.join(source, 'a.txt')).mode & 0o555).toString(8)}\n`, 'no write bits');
  for (const write of [`echo x > ${inside}/new`, `rm ${inside}/a.txt`, `mkdir ${inside}/d`, `echo x >> ${inside}/a.txt`, `touch ${inside}/a.txt`]) {
    const r = sh(write);
    assert.notEqual(r.status, 0, write);
    assert.match(r.stderr, /Read-only file system/, write);
  }

  mount.child.kill('SIGINT');
  const result = await mount.done;
  unmounted = true;
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(fs.readdirSync(mnt), [], 'unmounted');
});

test('mount where FUSE cannot be used: one line that points to serve webdav', (t) => {
  const dir = tempDir(t);
  fs.chmodSync(dir, 0o755);
  const mnt = path.join(dir, 'mnt');
  fs.mkdirSync(mnt);
  // /dev/fuse is often mode 0666, so a private mount namespace hides it behind a file of mode 0600 owned
  // by nobody, which root without its read-override capabilities cannot open: the same as a machine
  // whose FUSE device is closed to the user. (Switching to nobody instead needed a checkout nobody can
  // read, which a clone in a mktemp directory is not.)
  const closedDevice = path.join(dir, 'closed-fuse');
  fs.writeFileSync(closedDevice, '', { mode: 0o600 });
  fs.chownSync(closedDevice, 65534, 65534);
  const cli = [process.execPath, path.join(import.meta.dirname, '../src/cli/main.ts'), 'mount', '--repo', path.join(dir, 'repo'), mnt];
  const script = 'mount --bind "$0" /dev/fuse && exec setpriv --bounding-set -dac_override,-dac_read_search "$@"';
  const r = spawnSync('unshare', ['--mount', 'sh', '-c', script, closedDevice, ...cli], {
    encoding: 'utf8',
    env: { ...process.env, COFFER_PASSWORD: 'x', HOME: dir },
  });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^coffer: FUSE is not available: .*; browse the snapshots with coffer serve webdav instead .*\n$/);
  assert.match(coffer(['mount', '--repo', dir, path.join(dir, 'nope')]).stderr, /^coffer: \S+nope is not a directory: create it first/);
});
