// `coffer dump` writes a pax tar in which every name survives byte for byte, valid UTF-8 or not, long
// or short, and that GNU tar extracts as it was.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { okBytes, ok, tempDir } from './helpers/cli.ts';
import { craftNode, Crafter } from './helpers/craft.ts';

test('dump: names that are not UTF-8 or longer than ustar holds come back exactly from GNU tar', async (t) => {
  const dir = tempDir(t);
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  const invalid = Buffer.from([0x66, 0xff, 0xfe]);
  const replacement = Buffer.from('f\ufffd\ufffd');
  const long = Buffer.from(`${'long-name-'.repeat(20)}.txt`);
  const crafter = await Crafter.open(repo);
  const chunk = crafter.data(Buffer.from('content'));
  const sub = crafter.tree([
    craftNode.file(invalid, [chunk], 7, { mtimeNs: 1_600_000_000_123_456_789n }),
    craftNode.file(replacement, [chunk], 7),
    craftNode.file(long, [chunk], 7, { links: 2, inode: 9n }),
    craftNode.file('hardlink', [chunk], 7, { links: 2, inode: 9n }),
    craftNode.symlink('link', `target-${'x'.repeat(150)}`),
  ]);
  const id = await crafter.snapshot(crafter.tree([craftNode.dir(Buffer.from([0xc3, 0x28]), sub)]));
  await crafter.close();
  const archive = okBytes(['dump', '--repo', repo, id, '/']);
  const out = path.join(dir, 'out');
  fs.mkdirSync(out);
  const extract = spawnSync('tar', ['-x', '-f', '-', '-C', out], { input: archive });
  assert.equal(extract.status, 0, extract.stderr.toString());
  const top = fs.readdirSync(out, { encoding: 'buffer' });
  assert.deepEqual(top, [Buffer.from([0xc3, 0x28])]);
  const inside = Buffer.concat([Buffer.from(`${out}/`), top[0]!, Buffer.from('/')]);
  const names = fs.readdirSync(inside, { encoding: 'buffer' }).map((n) => n.toString('hex')).sort();
  assert.deepEqual(names, [invalid, replacement, long, Buffer.from('hardlink'), Buffer.from('link')].map((n) => n.toString('hex')).sort());
  const at = (name: Buffer): Buffer => Buffer.concat([inside, name]);
  assert.equal(fs.readFileSync(at(invalid), 'utf8'), 'content');
  assert.equal(fs.statSync(at(invalid), { bigint: true }).mtimeNs, 1_600_000_000_123_456_789n, 'sub-second times survive');
  assert.equal(fs.statSync(at(long)).ino, fs.statSync(at(Buffer.from('hardlink'))).ino, 'hard links stay linked');
  assert.equal(fs.readlinkSync(at(Buffer.from('link'))), `target-${'x'.repeat(150)}`);
});
