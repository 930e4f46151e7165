import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import SftpClient from 'ssh2-sftp-client';
import { parseSftpLocation } from '../src/store/locations.ts';
import { SftpStore, describeSftpError } from '../src/store/sftp.ts';
import { sftpTarget } from '../src/store/ssh-config.ts';
import { StoreError } from '../src/store/store.ts';
import { rejectsWith, storeConformance } from './store-conformance.ts';
import { requireSshd, startSshd, type SshServer } from './helpers/sshd.ts';
import { objectName } from './helpers/names.ts';

const run = promisify(execFile);

// A test of its own, because node:test counts the tests of a suite whose before() hook failed as
// cancelled rather than failed: a missing sshd must show up as a failure.
it('has an OpenSSH server to test against', () => requireSshd());

describe('SFTP store on OpenSSH', () => {
  let server: SshServer;
  let n = 0;
  const locationFor = (s: SshServer, dir: string): string => `sftp://${s.user}@${s.host}:${s.port}${dir}`;
  const keyOf = (s: SshServer, key = s.keyPath) => ({ env: { COFFER_SFTP_KEY: key, COFFER_SFTP_KNOWN_HOSTS: s.knownHostsPath } });
  const newStore = (): SftpStore => new SftpStore(locationFor(server, path.join(server.dir, `repo-${n++}`)), keyOf(server));

  before(async () => {
    server = await startSshd();
  });
  after(() => server.stop());

  storeConformance('sftp', async () => newStore());

  it('relies on OpenSSH refusing to rename onto an existing file', async () => {
    const client = new SftpClient();
    const { host, port } = server;
    await client.connect({ host, port, sock: net.connect({ host, port, noDelay: true }), username: server.user, privateKey: await fs.readFile(server.keyPath) });
    try {
      await client.put(Buffer.from('first'), path.join(server.dir, 'target'));
      await client.put(Buffer.from('second'), path.join(server.dir, 'incoming'));
      await assert.rejects(client.rename(path.join(server.dir, 'incoming'), path.join(server.dir, 'target')));
      assert.equal(await fs.readFile(path.join(server.dir, 'target'), 'utf8'), 'first');
    } finally {
      await client.end();
    }
  });

  it('creates objects 0600 and folders 0700, whatever the umask', async () => {
    const root = path.join(server.dir, `modes-${n++}`);
    const store = new SftpStore(locationFor(server, root), keyOf(server));
    try {
      const name = objectName('data', 'private');
      await store.put(name, Buffer.from('private'));
      assert.equal((await fs.stat(path.join(root, name))).mode & 0o777, 0o600);
      for (const dir of [root, path.join(root, 'data'), path.dirname(path.join(root, name)), path.join(root, 'tmp')]) {
        assert.equal((await fs.stat(dir)).mode & 0o777, 0o700, dir);
      }
    } finally {
      await store.close();
    }
  });

  it('skips and reports what a real server lists that is no repository object: symlinks, odd names, folders', async () => {
    const root = path.join(server.dir, `planted-${n++}`);
    const foreign: string[] = [];
    const store = new SftpStore(locationFor(server, root), { env: keyOf(server).env, onForeign: (name, reason) => foreign.push(`${name}: ${reason}`) });
    try {
      const key = objectName('keys', 'real');
      await store.put(key, Buffer.from('key'));
      await fs.symlink('/etc/passwd', path.join(root, objectName('keys', 'link')));
      await fs.writeFile(path.join(root, 'keys', 'notes\u001b[2J.txt'), 'x');
      await fs.mkdir(path.join(root, 'keys', 'sub'));
      const listed = [];
      for await (const info of store.list('keys')) listed.push(info.name);
      assert.deepEqual(listed, [key]);
      assert.deepEqual(foreign.sort(), [
        `${objectName('keys', 'link')}: a symbolic link (a repository holds regular files only)`,
        'keys/notes\u001b[2J.txt: not an object name of a Coffer repository',
        'keys/sub: a directory that is not part of the repository layout',
      ].sort());
    } finally {
      await store.close();
    }
  });

  it('accepts a location relative to the home directory', async () => {
    const relative = path.relative(os.homedir(), path.join(server.dir, 'in-home'));
    const store = new SftpStore(`sftp://${server.user}@${server.host}:${server.port}/~/${relative}`, keyOf(server));
    try {
      await store.put('config', Buffer.from('home'));
      assert.equal(await fs.readFile(path.join(server.dir, 'in-home', 'config'), 'utf8'), 'home');
    } finally {
      await store.close();
    }
  });

  it("refuses a wrong key with a clear 'denied' message", async () => {
    // The server's own host key is a valid private key that is not in authorized_keys.
    const store = new SftpStore(locationFor(server, path.join(server.dir, 'denied')), keyOf(server, path.join(server.dir, 'host_key')));
    try {
      const err = await rejectsWith(store.stat('config'), 'denied', store, 'config');
      assert.match(err.message, /refused the SSH key or password.*COFFER_SFTP_KEY/);
    } finally {
      await store.close();
    }
  });

  it("reports a missing key file as 'denied'", async () => {
    const missing = path.join(server.dir, 'no-such-key');
    const store = new SftpStore(locationFor(server, server.dir), keyOf(server, missing));
    const err = await rejectsWith(store.stat('config'), 'denied', store);
    assert.ok(err.message.includes(missing));
  });

  it('falls back to ~/.ssh/id_ed25519 and ~/.ssh/known_hosts, and asks for a key or password when there is none', async () => {
    const home = path.join(server.dir, 'home');
    await fs.mkdir(path.join(home, '.ssh'), { recursive: true });
    await fs.copyFile(server.knownHostsPath, path.join(home, '.ssh', 'known_hosts'));
    const location = locationFor(server, path.join(server.dir, 'default-key'));
    const keyless = new SftpStore(location, { env: {}, homeDir: home });
    const err = await rejectsWith(keyless.stat('config'), 'denied', keyless);
    assert.match(err.message, /COFFER_SFTP_KEY or COFFER_SFTP_PASSWORD/);
    await fs.copyFile(server.keyPath, path.join(home, '.ssh', 'id_ed25519'));
    const store = new SftpStore(location, { env: {}, homeDir: home });
    try {
      assert.equal(await store.stat('config'), undefined);
    } finally {
      await store.close();
    }
  });

  it('opens a new connection after the old one dropped', async () => {
    const store = newStore();
    try {
      await store.put('config', Buffer.from('before'));
      await server.dropConnections();
      await rejectsWith(store.get('config'), 'transient', store, 'config');
      assert.equal((await store.get('config')).toString(), 'before');
    } finally {
      await store.close();
    }
  });

  it("maps a server killed during a transfer to 'transient'", async () => {
    const doomed = await startSshd();
    // Its key must outlive it, so that reconnecting fails on the network and not on a missing key.
    const keyPath = path.join(server.dir, 'doomed_key');
    await fs.copyFile(doomed.keyPath, keyPath);
    const store = new SftpStore(locationFor(doomed, path.join(doomed.dir, 'repo')), keyOf(doomed, keyPath));
    try {
      await store.put(objectName('data', 'big'), crypto.randomBytes(4 * 1024 * 1024));
      // Frozen first, so the read is surely under way when the server dies.
      await doomed.freeze();
      const failedRead = rejectsWith(store.get(objectName('data', 'big')), 'transient', store, objectName('data', 'big'));
      await new Promise((resolve) => setTimeout(resolve, 50));
      await doomed.stop();
      await failedRead;
      await rejectsWith(store.stat('config'), 'transient', store, 'config');
    } finally {
      await store.close();
      await doomed.stop();
    }
  });

  it("reports a full disk as 'no-space'", async (t) => {
    const small = path.join(server.dir, 'small-disk');
    await fs.mkdir(small);
    try {
      await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', small]);
    } catch (err) {
      t.skip(`cannot mount a 1 MiB tmpfs to fill up (needs root): ${(err as Error).message.split('\n')[0]}`);
      return;
    }
    const store = new SftpStore(locationFor(server, small), keyOf(server));
    try {
      await rejectsWith(store.put(objectName('data', 'too-big'), crypto.randomBytes(2 * 1024 * 1024)), 'no-space', store, objectName('data', 'too-big'));
      assert.deepEqual(await fs.readdir(path.join(small, 'tmp')), [], 'the partial upload was left behind');
    } finally {
      await store.close();
      await run('umount', [small]);
    }
  });
});

describe('SFTP locations', () => {
  it('parses user, host, port and path; ssh defaults fill in what it leaves out', () => {
    assert.deepEqual(parseSftpLocation('sftp://backup@nas.local:2222/volume1/coffer/'), { user: 'backup', host: 'nas.local', port: 2222, root: '/volume1/coffer' });
    assert.deepEqual(parseSftpLocation('sftp://backup@nas.local/~/coffer'), { user: 'backup', host: 'nas.local', root: 'coffer' });
    // A home without ~/.ssh/config: the local user name and port 22, as for ssh.
    const { target } = sftpTarget('sftp://nas.local/srv', os.tmpdir());
    assert.equal(target.user, os.userInfo().username);
    assert.equal(target.port, 22);
    assert.equal(new SftpStore('sftp://backup@nas.local/~/coffer', { homeDir: os.tmpdir() }).location, 'sftp://backup@nas.local/~/coffer');
    assert.equal(new SftpStore('sftp://backup@nas.local:2222/srv/coffer', { homeDir: os.tmpdir() }).location, 'sftp://backup@nas.local:2222/srv/coffer');
  });

  it('refuses malformed locations and never echoes a password', () => {
    for (const bad of ['sftp://host', 'sftp://host/', 'sftp:/relative', 'sftp://host/p?x=1']) {
      assert.throws(() => parseSftpLocation(bad), (err) => err instanceof StoreError && err.kind === 'permanent' && /sftp:\/\//.test(err.message), bad);
    }
    assert.throws(() => parseSftpLocation('sftp://me:hunter2@host/srv'), (err) => err instanceof StoreError && !err.message.includes('hunter2'));
  });

  it('maps SFTP status codes', () => {
    const kind = (code: number | string, message = 'x'): string => describeSftpError(Object.assign(new Error(message), { code }), 'reading config from here').kind;
    assert.equal(kind(2), 'not-found');
    assert.equal(kind('ENOENT'), 'not-found');
    assert.equal(kind(3, 'Permission denied'), 'denied');
    assert.equal(kind(4, 'Failure'), 'permanent');
    assert.equal(kind('ECONNREFUSED', 'Remote host refused connection'), 'transient');
    assert.equal(kind('ERR_GENERIC_CLIENT', 'get: No response from server'), 'transient');
  });
});
