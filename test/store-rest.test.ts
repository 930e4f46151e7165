// The REST store (rest: and rclone: locations) against Debian's rclone: `rclone serve restic` over
// HTTP on loopback, append-only, with TLS and a password, and over stdin/stdout.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openConfiguredStore } from '../src/cli/repo-options.ts';
import { isRemoteLocation, parseRcloneLocation, parseRestLocation, rcloneDisplayLocation, restDisplayLocation } from '../src/store/locations.ts';
import { openStore } from '../src/store/open-store.ts';
import { FOLDERS } from '../src/store/layout.ts';
import { REST_FOLDERS } from '../src/store/rest.ts';
import { openRestHttpStore } from '../src/store/rest-http.ts';
import { openRestRcloneStore } from '../src/store/rest-rclone.ts';
import { RetryStore } from '../src/store/retry.ts';
import { StoreError, packName, type Store } from '../src/store/store.ts';
import { emptyRcloneConfig, startRcloneServer, type RcloneServer } from './helpers/rclone.ts';
import { selfSignedCertificate } from './helpers/tls.ts';
import { rejectsWith, storeConformance } from './store-conformance.ts';

const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-rest-test-'));
// rclone children of the rclone: stores read this configuration, not the user's.
process.env.RCLONE_CONFIG = await emptyRcloneConfig(scratch);
after(() => fs.rm(scratch, { recursive: true, force: true }));

function sha256(data: Uint8Array): string {
  return crypto.createHash('sha256').update(data).digest('hex');
}

async function listAll(store: Store, dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const info of store.list(dir)) names.push(info.name);
  return names.sort();
}

/** Several big uploads at once, as a backup sends them (HTTP/2 buffers them all in one session). */
async function bigUploadsAtOnce(store: Store): Promise<void> {
  try {
    const packs = Array.from({ length: 6 }, (_, i) => crypto.randomBytes(16 * 1024 * 1024 + i));
    const results = await Promise.all(packs.map((pack) => store.put(packName(sha256(pack)), pack)));
    assert.deepEqual(results, packs.map(() => true));
    assert.equal((await listAll(store, 'data')).length, packs.length);
  } finally {
    await store.close();
  }
}

describe('REST store on rclone serve restic over HTTP', () => {
  let server: RcloneServer;
  before(async () => (server = await startRcloneServer()));
  after(() => server.stop());

  let n = 0;
  // Each store gets its own repository path on the one server, as rest-server serves several.
  storeConformance('rest', async () => openRestHttpStore(`rest:${server.url}repo-${n++}/`), { noTimes: true });

  it('takes several big uploads at once', () => bigUploadsAtOnce(openRestHttpStore(`rest:${server.url}big/`)));

  it('lays objects out as restic does, tmp/ in locks/', async () => {
    const store = openRestHttpStore(`rest:${server.url}layout`);
    try {
      const pack = crypto.randomBytes(100);
      const id = sha256(pack);
      await store.put('config', Buffer.from('{}'));
      await store.put(packName(id), pack);
      await store.put(`tmp/${id}`, pack);
      const files = (await fs.readdir(path.join(server.dir, 'layout'), { recursive: true })).sort();
      for (const expected of ['config', `data/${id.slice(0, 2)}/${id}`, `locks/${id}`]) assert.ok(files.includes(expected), `${expected} in ${files}`);
      assert.ok(!files.some((f) => f.startsWith('tmp')), String(files));
      assert.deepEqual(await listAll(store, 'tmp'), [`tmp/${id}`]);
    } finally {
      await store.close();
    }
  });

  it('refuses names outside the layout without asking the server', async () => {
    const store = openRestHttpStore(`rest:${server.url}odd`);
    try {
      for (const name of ['locks/x', `data/ab/cd${'0'.repeat(62)}`, 'data/abcd', 'index/../config', 'keys/a/b']) {
        await rejectsWith(store.put(name, Buffer.from('x')), 'permanent', store, name);
      }
    } finally {
      await store.close();
    }
  });

  it("maps a stopped server to 'transient'", async () => {
    const doomed = await startRcloneServer();
    const store = openRestHttpStore(`rest:${doomed.url}`);
    try {
      await store.put('config', Buffer.from('x'));
      await doomed.stop();
      await rejectsWith(store.get('config'), 'transient', store, 'config');
    } finally {
      await store.close();
    }
  });
});

describe('REST store on an append-only rclone serve restic', () => {
  let server: RcloneServer;
  before(async () => (server = await startRcloneServer({ appendOnly: true })));
  after(() => server.stop());

  let n = 0;
  storeConformance('rest append-only', async () => openRestHttpStore(`rest:${server.url}repo-${n++}/`), { appendOnly: true, noTimes: true });

  it("still lets doctor's probe in tmp/ (locks/) be deleted", async () => {
    const store = openRestHttpStore(`rest:${server.url}probe/`);
    try {
      const probe = crypto.randomBytes(64);
      await store.put(`tmp/${sha256(probe)}`, probe);
      await store.delete(`tmp/${sha256(probe)}`);
      assert.equal(await store.stat(`tmp/${sha256(probe)}`), undefined);
    } finally {
      await store.close();
    }
  });
});

describe('REST store over HTTPS with a password', () => {
  let server: RcloneServer;
  let cert: string;
  const auth = { user: 'alice', pass: 's3cret-pass' };
  before(async () => {
    const files = await selfSignedCertificate(scratch, 'rest');
    cert = files.cert;
    server = await startRcloneServer({ tls: files, auth });
  });
  after(() => server.stop());

  const location = (credentials: string): string => `rest:${server.url.replace('https://', `https://${credentials}`)}repo/`;

  it('refuses an untrusted certificate, and says to use --cacert or --insecure-tls', async () => {
    const store = openRestHttpStore(location('alice:s3cret-pass@'));
    try {
      const err = await rejectsWith(store.stat('config'), 'denied', store, 'config');
      assert.match(err.message, /--cacert FILE.*--insecure-tls/);
    } finally {
      await store.close();
    }
  });

  it('trusts the certificate given with --cacert, and any with --insecure-tls', async () => {
    for (const tls of [{ caFiles: [cert] }, { insecure: true }]) {
      const store = openRestHttpStore(location('alice:s3cret-pass@'), { tls });
      try {
        await store.put('config', Buffer.from('hello'));
        assert.equal((await store.get('config')).toString(), 'hello');
      } finally {
        await store.close();
      }
    }
  });

  it('takes the user and password from the location or from COFFER_REST_USERNAME and COFFER_REST_PASSWORD, and never shows the password', async () => {
    const fromUrl = openRestHttpStore(location('alice:s3cret-pass@'), { tls: { caFiles: [cert] } });
    const fromEnv = openRestHttpStore(location(''), { tls: { caFiles: [cert] }, env: { COFFER_REST_USERNAME: 'alice', COFFER_REST_PASSWORD: 's3cret-pass' } });
    try {
      assert.equal(fromUrl.location, location('alice@'));
      assert.ok(await fromUrl.stat('config'));
      assert.ok(await fromEnv.stat('config'));
    } finally {
      await fromUrl.close();
      await fromEnv.close();
    }
    for (const env of [{}, { COFFER_REST_USERNAME: 'alice', COFFER_REST_PASSWORD: 'wrong' }]) {
      const store = openRestHttpStore(location(''), { tls: { caFiles: [cert] }, env });
      try {
        const err = await rejectsWith(store.stat('config'), 'denied', store, 'config');
        assert.match(err.message, /COFFER_REST_USERNAME and COFFER_REST_PASSWORD/);
        assert.ok(!err.message.includes('wrong'));
      } finally {
        await store.close();
      }
    }
  });

  it('reports an unreadable or wrong --cacert file in one line', async () => {
    const notACert = path.join(scratch, 'not-a-cert.pem');
    await fs.writeFile(notACert, 'hello\n');
    for (const [file, expected] of [[path.join(scratch, 'missing.pem'), /cannot read .*ENOENT/], [notACert, /holds no PEM certificate/]] as const) {
      const store = openStore(location(''), { rest: { tls: { caFiles: [file] } } });
      const err = await rejectsWith(store.stat('config'), 'permanent', store);
      assert.match(err.message, expected);
      await store.close();
    }
  });

  it('says when the server speaks plain HTTP to an https: location', async () => {
    const plain = await startRcloneServer();
    const store = openRestHttpStore(`rest:${plain.url.replace('http:', 'https:')}`);
    try {
      const err = await rejectsWith(store.stat('config'), 'permanent', store, 'config');
      assert.match(err.message, /does not speak TLS/);
    } finally {
      await store.close();
      await plain.stop();
    }
  });
});

describe('rclone: store over rclone serve restic --stdio', () => {
  let n = 0;
  storeConformance('rclone', async () => openRestRcloneStore(`rclone::local:${scratch}/stdio-${n++}`), { noTimes: true });

  it('takes several big uploads at once', () => bigUploadsAtOnce(openRestRcloneStore(`rclone::local:${scratch}/big-uploads`)));

  it('uses a remote of the rclone configuration file', async () => {
    const config = path.join(scratch, 'named.conf');
    await fs.writeFile(config, `[backups]\ntype = alias\nremote = ${scratch}/named\n`);
    const previous = process.env.RCLONE_CONFIG;
    process.env.RCLONE_CONFIG = config;
    const store = openRestRcloneStore('rclone:backups:repo');
    try {
      await store.put('config', Buffer.from('named'));
      assert.equal(await fs.readFile(path.join(scratch, 'named', 'repo', 'config'), 'utf8'), 'named');
    } finally {
      await store.close();
      process.env.RCLONE_CONFIG = previous;
    }
  });

  it('reports an unknown remote, and a missing rclone, in one line without retrying', async () => {
    const store = openRestRcloneStore('rclone:nosuchremote:repo');
    const err = await rejectsWith(store.stat('config'), 'permanent', store, 'config');
    assert.match(err.message, /rclone could not serve nosuchremote:repo.*rclone lsd/);
    await rejectsWith(store.get('config'), 'permanent', store, 'config');
    await store.close();
    const missing = openRestRcloneStore(`rclone::local:${scratch}/x`, { env: { COFFER_RCLONE: '/nonexistent/rclone' } });
    const notInstalled = await rejectsWith(missing.stat('config'), 'permanent', missing, 'config');
    assert.match(notInstalled.message, /rclone is not installed/);
    await missing.close();
  });

  it('starts rclone again after it died, sends a read again to the new one, reports a death under a write as transient, and stops it on close', async () => {
    const store = openRestRcloneStore(`rclone::local:${scratch}/restart`);
    const children = (): Promise<number[]> => rclonePids(`${scratch}/restart`);
    const killed = async (pid: number): Promise<void> => {
      process.kill(pid, 'SIGKILL');
      while ((await children()).includes(pid)) await new Promise((resolve) => setTimeout(resolve, 20));
    };
    try {
      await store.put('config', Buffer.from('one'));
      const [first] = await children();
      assert.ok(first, 'no rclone running');
      // Killed while idle: the store may not have seen the exit yet when the next read goes out.
      await killed(first);
      assert.equal((await store.get('config')).toString(), 'one');
      const [second] = await children();
      assert.ok(second && second !== first, 'rclone was not started again');
      // Frozen, so that the request is surely under way when rclone dies.
      process.kill(second, 'SIGSTOP');
      const cut = store.put(`index/${'ab'.repeat(32)}`, Buffer.from('two')).catch((err: unknown) => err);
      await new Promise((resolve) => setTimeout(resolve, 50));
      await killed(second);
      const err = await cut;
      // On a busy machine the answer may still slip out before rclone stops; a failure must be transient.
      if (typeof err !== 'boolean') assert.ok(err instanceof StoreError && err.kind === 'transient' && !err.message.includes('\n'), String(err));
      assert.equal((await store.get('config')).toString(), 'one');
    } finally {
      await store.close();
    }
    assert.deepEqual(await children(), []);
  });
});

/** The rclone processes serving `dir`, found through /proc. */
async function rclonePids(dir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await fs.readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes('serve\0restic') && cmdline.includes(dir)) pids.push(Number(entry));
  }
  return pids;
}

describe('REST store against a server of protocol version 1', () => {
  it('lists names, then sizes each with HEAD', async () => {
    const [a, b] = ['aa', 'bb'].map((prefix) => prefix + crypto.randomBytes(31).toString('hex')) as [string, string];
    const objects = new Map([[a, 3], [b, 5]]);
    const server = http.createServer((req, res) => {
      if (req.method === 'GET' && req.url === '/data/') {
        // A version 1 server answers JSON names, whatever Accept asked for.
        res.writeHead(200, { 'content-type': 'application/vnd.x.restic.rest.v1' }).end(JSON.stringify([...objects.keys()]));
      } else if (req.method === 'HEAD' && req.url?.startsWith('/data/')) {
        const size = objects.get(req.url.slice(6));
        res.writeHead(size === undefined ? 404 : 200, size === undefined ? {} : { 'content-length': String(size) }).end();
      } else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const store = openRestHttpStore(`rest:http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    try {
      const listed = [];
      for await (const info of store.list('data')) listed.push(info);
      assert.deepEqual(listed.sort((x, y) => x.name.localeCompare(y.name)), [{ name: `data/aa/${a}`, size: 3 }, { name: `data/bb/${b}`, size: 5 }]);
    } finally {
      await store.close();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('skips and reports listed entries that are no objects of the folder, or have impossible sizes', async () => {
    const good = crypto.randomBytes(32).toString('hex');
    const listing = [{ name: '../../etc', size: 1 }, { name: good, size: 7 }, { name: 'ab', size: 1 }, { name: crypto.randomBytes(32).toString('hex'), size: -1 }, { size: 3 }];
    const server = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/vnd.x.restic.rest.v2' }).end(JSON.stringify(listing)));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const foreign: string[] = [];
    const store = openRestHttpStore(`rest:http://127.0.0.1:${(server.address() as AddressInfo).port}/`, { onForeign: (name, reason) => foreign.push(`${name}: ${reason}`) });
    try {
      assert.deepEqual(await listAll(store, 'index'), [`index/${good}`]);
      assert.equal(foreign.length, 4, foreign.join('\n'));
      assert.match(foreign[0]!, /^index\/\.\.\/\.\.\/etc: not an object name/);
    } finally {
      await store.close();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('REST store against a hostile server', () => {
  it('refuses an answer longer than such an object may be, before reading it', async () => {
    const server = http.createServer((_req, res) => {
      // Announces 64 GiB and sends a little: the store must refuse on the announcement.
      res.writeHead(200, { 'content-length': String(64 * 1024 ** 3) });
      res.write(Buffer.alloc(1024));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const store = openRestHttpStore(`rest:http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    try {
      const name = `snapshots/${'ab'.repeat(32)}`;
      const err = await rejectsWith(store.get(name), 'permanent', store, name);
      assert.match(err.message, /announces \d+ bytes, more than the \d+ allowed/);
    } finally {
      await store.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('REST and rclone locations', () => {
  it('parse and display without the password', () => {
    assert.deepEqual(parseRestLocation('rest:https://alice:pw@backup.example:8000/repo'), { url: 'https://backup.example:8000/repo/', user: 'alice', password: 'pw' });
    assert.equal(restDisplayLocation(parseRestLocation('rest:https://alice:pw@backup.example:8000/repo')), 'rest:https://alice@backup.example:8000/repo/');
    assert.equal(restDisplayLocation(parseRestLocation('rest:http://127.0.0.1:8000')), 'rest:http://127.0.0.1:8000/');
    assert.equal(parseRcloneLocation('rclone:b2:bucket/coffer'), 'b2:bucket/coffer');
    assert.equal(rcloneDisplayLocation('b2:bucket/coffer'), 'rclone:b2:bucket/coffer');
    assert.equal(rcloneDisplayLocation(':s3,provider=Minio,secret_access_key=hunter2:bucket'), 'rclone::s3,provider=***,secret_access_key=***:bucket');
    assert.equal(openStore('rclone::b2,account=me,key="x,y":bucket').location, 'rclone::b2,account=***,key=***:bucket');
  });

  it('map every folder of the layout onto a folder of its own on the server', () => {
    const missing = FOLDERS.filter((folder) => !REST_FOLDERS[folder.dir]).map((folder) => folder.dir);
    assert.deepEqual(missing, [], 'add these folders to REST_FOLDERS in src/store/rest.ts and to the table in docs/FORMAT.md');
    const targets = FOLDERS.map((folder) => REST_FOLDERS[folder.dir]);
    assert.equal(new Set(targets).size, targets.length, 'two folders would share one REST folder, and listings could not tell them apart');
    const restic = ['data', 'keys', 'locks', 'snapshots', 'index'];
    for (const target of targets) {
      // A folder restic lacks lives in a nested repository of its own: REPO/deletions/locks/<id>.
      const parts = target!.split('/');
      assert.ok(restic.includes(parts.at(-1)!), `${target} is not a folder restic's rest-server serves`);
      assert.ok(parts.length <= 2 && !restic.includes(parts[0]!) || parts.length === 1, `${target}: a nested repository must not be named like a folder of the repository it lies in`);
    }
  });

  it('are remote: every command retries them, and --limit-* throttles them', async () => {
    for (const location of ['rest:http://127.0.0.1:1/', 'rclone::local:/tmp/x']) {
      assert.ok(isRemoteLocation(location));
      const store = openConfiguredStore(location, { limitUpload: ['1M'], limitDownload: [] });
      assert.ok(store instanceof RetryStore, location);
      await store.close();
    }
  });

  it('refuse malformed locations in one line, never echoing a password', () => {
    for (const bad of ['rest:', 'rest:ftp://host/', 'rest:host:8000/', 'rest:https://host/?x=1', 'rclone:', 'rclone:--config=/etc/passwd', 'rclone:a\nb']) {
      assert.throws(() => openStore(bad), (err) => err instanceof StoreError && err.kind === 'permanent' && !err.message.includes('\n'), bad);
    }
    assert.throws(() => openStore('rest:ftp://me:hunter2@host/'), (err) => err instanceof StoreError && !err.message.includes('hunter2'));
  });
});
