// The server's log file rotates by size and keeps a bounded number of old files.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { RotatingFile } from '../src/server/log-file.ts';
import { tempDir } from './helpers/cli.ts';

test('server.log rotates to .1, .2 … at the size limit and keeps at most maxFiles old files', (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'logs', 'server.log');
  const log = new RotatingFile(file, { maxBytes: 100, maxFiles: 2 });
  for (let i = 0; i < 10; i++) log.write(`${JSON.stringify({ line: i, pad: 'x'.repeat(20) })}\n`);
  log.close();
  assert.deepEqual(fs.readdirSync(path.dirname(file)).sort(), ['server.log', 'server.log.1', 'server.log.2']);
  for (const f of fs.readdirSync(path.dirname(file))) assert.ok(fs.statSync(path.join(path.dirname(file), f)).size <= 100, f);
  const newest = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l).line);
  assert.equal(newest[newest.length - 1], 9, 'the current file holds the newest lines');
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  const reopened = new RotatingFile(file, { maxBytes: 100, maxFiles: 2 });
  reopened.write('{"line":10}\n');
  reopened.close();
  assert.match(fs.readFileSync(file, 'utf8'), /"line":10/);
});
