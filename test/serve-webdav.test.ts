// `coffer serve webdav`: every snapshot read-only over WebDAV, checked with a real WebDAV client
// (Debian's rclone: lsf and copy over its webdav backend) and with raw HTTP for the protocol details.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { coffer, cofferAsync, ok, tempDir } from './helpers/cli.ts';
import { seededBytes } from './helpers/tree.ts';

const hasRclone = spawnSync('rclone', ['version']).status === 0;

interface Served {
  readonly url: string;
  readonly source: string;
  readonly repo: string;
}

async function serve(t: TestContext, env: Record<string, string> = {}): Promise<Served> {
  const dir = tempDir(t);
  const source = path.join(dir, 'src');
  fs.mkdirSync(path.join(source, 'sub dir'), { recursive: true });
  fs.writeFileSync(path.join(source, 'hello.txt'), 'hello, webdav\n');
  fs.writeFileSync(path.join(source, 'sub dir', 'big.bin'), seededBytes('webdav', 5 << 20));
  fs.writeFileSync(path.join(source, 'grüße.txt'), 'utf-8 name');
  fs.writeFileSync(path.join(source, 'empty'), '');
  fs.symlinkSync('hello.txt', path.join(source, 'link'));
  // A name that is not valid UTF-8: served under its raw bytes, percent-encoded.
  fs.writeFileSync(Buffer.concat([Buffer.from(`${source}/caf`), Buffer.from([0xe9]), Buffer.from('.txt')]), 'latin-1 name');
  // Control characters and U+FFFF are legal in names but not in XML 1.0, even escaped: a client's parser
  // would reject the whole listing.
  fs.writeFileSync(path.join(source, 'ctl\x01\x1b\uffff.txt'), 'control name');
  const repo = path.join(dir, 'repo');
  ok(['init', '--repo', repo]);
  ok(['backup', '--repo', repo, source]);
  const server = cofferAsync(['serve', 'webdav', '--repo', repo, '--addr', '127.0.0.1:0', '--json'], { env });
  t.after(async () => {
    server.child.kill('SIGINT');
    await server.done;
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setInterval(() => {
      const m = /"url":"([^"]+)"/.exec(server.output().stdout);
      if (m) {
        clearInterval(timer);
        resolve(m[1]!);
      }
    }, 50);
    server.done.then((r) => {
      clearInterval(timer);
      reject(new Error(`serve exited ${r.code}: ${r.stderr}`));
    });
  });
  return { url, source, repo };
}

function rawStatus(url: string, rawPath: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { path: rawPath }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    req.on('error', reject).end();
  });
}

function rclone(url: string, ...args: string[]): string {
  return execFileSync('rclone', ['--config', '/dev/null', '--webdav-url', url, ...args], { encoding: 'utf8' });
}

test('rclone lists and copies snapshots from it', { skip: !hasRclone && 'rclone is not installed (.ci/run installs it)' }, async (t) => {
  const { url, source } = await serve(t);
  const top = rclone(url, 'lsf', ':webdav:').trim().split('\n');
  assert.equal(top.length, 2);
  assert.match(top[0]!, /^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ-[0-9a-f]{8}\/$/);
  assert.equal(top[1], 'latest/');
  assert.deepEqual(rclone(url, 'lsf', `:webdav:latest${source}`).trim().split('\n').sort(), ['caf\uFFFD.txt', 'ctl\x01\x1b\uffff.txt', 'empty', 'grüße.txt', 'hello.txt', 'sub dir/'], 'the symlink has no WebDAV form');
  const out = path.join(tempDir(t), 'copy');
  rclone(url, 'copy', `:webdav:${top[0]!}${source}`, out);
  for (const f of ['hello.txt', 'sub dir/big.bin', 'grüße.txt', 'empty', 'ctl\x01\x1b\uffff.txt']) assert.ok(fs.readFileSync(path.join(out, f)).equals(fs.readFileSync(path.join(source, f))), f);
  assert.equal(fs.statSync(path.join(out, 'hello.txt')).mtimeMs, Math.floor(fs.statSync(path.join(source, 'hello.txt')).mtimeMs / 1000) * 1000, 'modification times come along');
});

test('the protocol: OPTIONS, PROPFIND depth 0/1, GET with ranges, HEAD; writes are refused', async (t) => {
  const { url, source } = await serve(t);
  const file = `${url}latest${source}/sub%20dir/big.bin`;
  const big = fs.readFileSync(path.join(source, 'sub dir/big.bin'));

  const options = await fetch(url, { method: 'OPTIONS' });
  assert.equal(options.status, 200);
  assert.equal(options.headers.get('dav'), '1');
  assert.equal(options.headers.get('allow'), 'OPTIONS, GET, HEAD, PROPFIND');

  const one = await fetch(`${url}latest${source}/`, { method: 'PROPFIND', headers: { depth: '1' } });
  assert.equal(one.status, 207);
  const listing = await one.text();
  assert.match(listing, /<D:href>\/latest\/.*\/src\/sub%20dir\/<\/D:href>/);
  assert.match(listing, /<D:href>\/latest\/.*\/src\/gr%C3%BC%C3%9Fe\.txt<\/D:href>/);
  assert.doesNotMatch(listing, /link/);
  assert.match(listing, /<D:href>\/latest\/.*\/src\/caf%E9\.txt<\/D:href>/);
  assert.doesNotMatch(listing, /[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]/, 'only characters XML 1.0 allows');
  assert.match(listing, /<D:href>\/latest\/.*\/src\/ctl%01%1B%EF%BF%BF\.txt<\/D:href>/);
  assert.match(listing, /<D:displayname>ctl\ufffd\ufffd\ufffd\.txt<\/D:displayname>/);
  assert.equal(await (await fetch(`${url}latest${source}/ctl%01%1B%EF%BF%BF.txt`)).text(), 'control name');
  assert.equal(await (await fetch(`${url}latest${source}/caf%E9.txt`)).text(), 'latin-1 name');
  const zero = await (await fetch(file, { method: 'PROPFIND', headers: { depth: '0' } })).text();
  assert.match(zero, new RegExp(`<D:getcontentlength>${big.length}</D:getcontentlength>`));
  assert.equal((zero.match(/<D:response>/g) ?? []).length, 1);
  assert.equal((await fetch(url, { method: 'PROPFIND', headers: { depth: 'infinity' } })).status, 403);

  const whole = await fetch(file);
  assert.equal(whole.status, 200);
  assert.ok(Buffer.from(await whole.arrayBuffer()).equals(big));
  // A range across a chunk boundary (chunks are about 1 MiB).
  const mid = await fetch(file, { headers: { range: 'bytes=1000000-2100000' } });
  assert.equal(mid.status, 206);
  assert.equal(mid.headers.get('content-range'), `bytes 1000000-2100000/${big.length}`);
  assert.ok(Buffer.from(await mid.arrayBuffer()).equals(big.subarray(1000000, 2100001)));
  const tail = await fetch(file, { headers: { range: 'bytes=-10' } });
  assert.ok(Buffer.from(await tail.arrayBuffer()).equals(big.subarray(-10)));
  assert.equal((await fetch(file, { headers: { range: `bytes=${big.length}-` } })).status, 416);
  const head = await fetch(file, { method: 'HEAD' });
  assert.equal(head.headers.get('content-length'), String(big.length));
  assert.equal(head.headers.get('accept-ranges'), 'bytes');
  assert.equal(await (await fetch(`${url}latest${source}/empty`)).text(), '');
  assert.match(await (await fetch(`${url}latest${source}/`)).text(), /<a href="[^"]*hello\.txt">hello\.txt<\/a>/, 'a browser gets a listing');

  for (const method of ['PUT', 'DELETE', 'MKCOL', 'MOVE', 'COPY', 'PROPPATCH', 'LOCK']) {
    const r = await fetch(`${url}latest${source}/hello.txt`, { method, body: method === 'PUT' ? 'overwrite' : null });
    assert.equal(r.status, 405, method);
  }
  assert.equal((await fetch(`${url}latest${source}/nope`)).status, 404);
  // Raw request paths (fetch would normalise the dots away before they reach the server).
  assert.equal(await rawStatus(url, '/latest/%2e%2e/%2e%2e/etc/passwd'), 400);
  assert.equal(await rawStatus(url, '/latest/../../etc/passwd'), 400);
  assert.equal(await rawStatus(url, `/latest${source}/%zz`), 400);
  assert.equal((await fetch(`${url}nosuchsnapshot/`)).status, 404);
});

test('a password, required for other addresses than loopback; bad addresses are one line', async (t) => {
  const refused = coffer(['serve', 'webdav', '--repo', tempDir(t), '--addr', '0.0.0.0:0'], { env: { COFFER_WEBDAV_PASSWORD: undefined } });
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /^coffer: refusing to serve the snapshots on 0\.0\.0\.0 without a password: set COFFER_WEBDAV_PASSWORD/);
  assert.match(coffer(['serve', 'webdav', '--addr', 'localhost:http']).stderr, /^coffer: --addr takes HOST:PORT \(e\.g\. 127\.0\.0\.1:8080\), not "localhost:http"\n$/);

  const { url } = await serve(t, { COFFER_WEBDAV_PASSWORD: 's3cret' });
  assert.equal((await fetch(url, { method: 'PROPFIND', headers: { depth: '1' } })).status, 401);
  const wrong = `Basic ${Buffer.from('me:nope').toString('base64')}`;
  assert.equal((await fetch(url, { method: 'PROPFIND', headers: { depth: '1', authorization: wrong } })).status, 401);
  const right = `Basic ${Buffer.from('anyone:s3cret').toString('base64')}`;
  assert.equal((await fetch(url, { method: 'PROPFIND', headers: { depth: '1', authorization: right } })).status, 207);
  if (hasRclone) {
    const pass = execFileSync('rclone', ['obscure', 's3cret'], { encoding: 'utf8' }).trim();
    assert.match(rclone(url, '--webdav-user', 'ann', '--webdav-pass', pass, 'lsf', ':webdav:'), /^latest\/$/m);
  }
});
