import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { checkHostKey, fingerprint, knownHostName, knownKeyTypes, parseKnownHosts } from '../src/store/known-hosts.ts';
import { SftpStore, type SftpStoreOptions } from '../src/store/sftp.ts';
import { rejectsWith } from './store-conformance.ts';
import { requireSshd, startSshd, type SshServer } from './helpers/sshd.ts';

const run = promisify(execFile);

interface PublicKey {
  readonly type: string;
  readonly base64: string;
  readonly blob: Buffer;
  /** The fingerprint ssh-keygen -l prints. */
  readonly fingerprint: string;
}

/** A fresh key pair made by ssh-keygen; only its public half is returned. */
async function newPublicKey(dir: string, type: 'ed25519' | 'ecdsa'): Promise<PublicKey> {
  const file = path.join(dir, `key-${crypto.randomBytes(6).toString('hex')}`);
  await run('ssh-keygen', ['-q', '-t', type, '-N', '', '-f', file]);
  const [keyType = '', base64 = ''] = (await fs.readFile(`${file}.pub`, 'utf8')).split(' ');
  const { stdout } = await run('ssh-keygen', ['-l', '-f', `${file}.pub`]);
  return { type: keyType, base64, blob: Buffer.from(base64, 'base64'), fingerprint: stdout.split(' ')[1]! };
}

describe('known_hosts parsing', () => {
  let dir: string;
  let key: PublicKey;
  let other: PublicKey;
  let ecdsa: PublicKey;
  const line = (hosts: string, k: PublicKey, comment = ''): string => `${hosts} ${k.type} ${k.base64}${comment}`;

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-known-hosts-'));
    [key, other, ecdsa] = await Promise.all([newPublicKey(dir, 'ed25519'), newPublicKey(dir, 'ed25519'), newPublicKey(dir, 'ecdsa')]);
  });
  after(() => fs.rm(dir, { recursive: true, force: true }));

  it('names hosts the way ssh looks them up', () => {
    assert.equal(knownHostName('NAS.local', 22), 'nas.local');
    assert.equal(knownHostName('nas.local', 2222), '[nas.local]:2222');
    assert.equal(knownHostName('[::1]', 22), '::1');
    assert.equal(knownHostName('[::1]', 2222), '[::1]:2222');
  });

  it('reads plain lines, with comments and blank lines around them', () => {
    const entries = parseKnownHosts(['# my servers', '', line('nas.local', key, ' backup box'), '   ', '\t# indented comment', line('Other', other)].join('\n'));
    assert.deepEqual(
      entries.map((e) => [e.line, e.hosts, e.keyType, e.revoked]),
      [
        [3, ['nas.local'], 'ssh-ed25519', false],
        [6, ['Other'], 'ssh-ed25519', false],
      ],
    );
    assert.deepEqual(entries[0]!.key, key.blob);
    assert.deepEqual(checkHostKey(entries, 'nas.local', key.blob), { status: 'known' });
    assert.deepEqual(checkHostKey(entries, 'other', other.blob), { status: 'known' }, 'host names are not case-sensitive');
    assert.deepEqual(checkHostKey(entries, 'elsewhere', key.blob), { status: 'unknown' });
  });

  it('tells a bracketed port from port 22', () => {
    const entries = parseKnownHosts(line('[nas.local]:2222', key));
    assert.equal(checkHostKey(entries, knownHostName('nas.local', 2222), key.blob).status, 'known');
    assert.equal(checkHostKey(entries, knownHostName('nas.local', 22), key.blob).status, 'unknown');
    assert.equal(checkHostKey(entries, knownHostName('nas.local', 2200), key.blob).status, 'unknown');
  });

  it('reads lists of hosts, wildcards and negations', () => {
    const entries = parseKnownHosts([line('nas,192.168.1.5,[nas]:2222', key), line('*.lan,!evil.lan,backup-?', other)].join('\n'));
    for (const name of ['nas', '192.168.1.5', '[nas]:2222']) assert.equal(checkHostKey(entries, name, key.blob).status, 'known', name);
    for (const name of ['box.lan', 'backup-1']) assert.equal(checkHostKey(entries, name, other.blob).status, 'known', name);
    for (const name of ['evil.lan', 'backup-12', 'lan', '192.168.1.50']) assert.equal(checkHostKey(entries, name, other.blob).status, 'unknown', name);
  });

  it('reads hashed hosts written by ssh-keygen -H', async () => {
    const file = path.join(dir, 'hashed');
    await fs.writeFile(file, [line('nas.local', key), line('[nas.local]:2222', other), ''].join('\n'));
    await run('ssh-keygen', ['-H', '-f', file]);
    const text = await fs.readFile(file, 'utf8');
    assert.doesNotMatch(text, /nas\.local/);
    const entries = parseKnownHosts(text);
    assert.equal(entries.length, 2);
    assert.equal(checkHostKey(entries, 'nas.local', key.blob).status, 'known');
    assert.equal(checkHostKey(entries, '[nas.local]:2222', other.blob).status, 'known');
    assert.equal(checkHostKey(entries, 'nas.local', other.blob).status, 'changed');
    assert.equal(checkHostKey(entries, 'nas.other', key.blob).status, 'unknown');
  });

  it('reads a hashed host computed as HMAC-SHA1 of the name keyed with the salt', () => {
    const salt = crypto.randomBytes(20);
    const hash = crypto.createHmac('sha1', salt).update('[10.0.0.7]:2222').digest();
    const entries = parseKnownHosts(line(`|1|${salt.toString('base64')}|${hash.toString('base64')}`, key));
    assert.equal(checkHostKey(entries, '[10.0.0.7]:2222', key.blob).status, 'known');
    assert.equal(checkHostKey(entries, '10.0.0.7', key.blob).status, 'unknown');
  });

  it('reports a different key for a known host as changed, naming the line', () => {
    const entries = parseKnownHosts(['# header', line('nas', ecdsa), line('nas', key)].join('\n'));
    const sameType = checkHostKey(entries, 'nas', other.blob);
    assert.equal(sameType.status, 'changed');
    assert.equal(sameType.status === 'changed' && sameType.entry.line, 3, 'the line with a key of the same type');
    // Known only by a key of another type: the server should have offered that type.
    const otherType = checkHostKey(parseKnownHosts(line('nas', ecdsa)), 'nas', key.blob);
    assert.equal(otherType.status === 'changed' && otherType.entry.line, 1);
    assert.deepEqual(knownKeyTypes(entries, 'nas'), new Set(['ecdsa-sha2-nistp256', 'ssh-ed25519']));
  });

  it('refuses @revoked keys whatever host their line names, and skips @cert-authority lines', () => {
    const entries = parseKnownHosts([line('nas', key), `@revoked * ${key.type} ${key.base64}`, `@cert-authority *.lan ${other.type} ${other.base64}`].join('\n'));
    assert.deepEqual(
      entries.map((e) => [e.line, e.revoked]),
      [
        [1, false],
        [2, true],
      ],
    );
    const verdict = checkHostKey(entries, 'nas', key.blob);
    assert.equal(verdict.status === 'revoked' && verdict.entry.line, 2);
    assert.equal(checkHostKey(entries, 'box.lan', other.blob).status, 'unknown');
    assert.deepEqual(knownKeyTypes(entries, 'elsewhere'), new Set(), 'a revoked line knows no host');
  });

  it('skips malformed lines', () => {
    const entries = parseKnownHosts(
      [
        'nas',
        'nas ssh-ed25519',
        `nas ssh-rsa ${key.base64}`,
        `nas ssh-ed25519 ${key.base64.slice(0, 10)}`,
        'nas 2048 65537 1234567',
        `@unknown-marker nas ${key.type} ${key.base64}`,
        line('nas', other),
      ].join('\r\n'),
    );
    assert.deepEqual(
      entries.map((e) => e.line),
      [7],
    );
  });

  it('prints fingerprints like ssh-keygen -l', () => {
    assert.equal(fingerprint(key.blob), key.fingerprint);
    assert.equal(fingerprint(ecdsa.blob), ecdsa.fingerprint);
  });
});

// A test of its own, because node:test counts the tests of a suite whose before() hook failed as
// cancelled rather than failed: a missing sshd must show up as a failure.
it('has an OpenSSH server to test against', () => requireSshd());

describe('SFTP host key checks on OpenSSH', () => {
  let server: SshServer;
  let serverKeys: string[];
  let n = 0;
  const location = (): string => `sftp://${server.user}@${server.host}:${server.port}${path.join(server.dir, `repo-${n++}`)}`;
  const name = (): string => `[127.0.0.1]:${server.port}`;
  /** A home directory of its own, without .ssh. */
  const newHome = async (): Promise<string> => fs.mkdtemp(path.join(server.dir, 'home-'));
  const options = (home: string, knownHosts?: string): SftpStoreOptions => ({
    env: { COFFER_SFTP_KEY: server.keyPath, COFFER_SFTP_KNOWN_HOSTS: knownHosts },
    homeDir: home,
  });
  /** Opens a store and checks that it connects. */
  const connects = async (opts: SftpStoreOptions): Promise<void> => {
    const store = new SftpStore(location(), opts);
    try {
      assert.equal(await store.stat('config'), undefined);
    } finally {
      await store.close();
    }
  };

  before(async () => {
    server = await startSshd();
    serverKeys = (await fs.readFile(server.knownHostsPath, 'utf8')).trim().split('\n');
  });
  after(() => server.stop());

  it('connects when the host key is in the known_hosts file', async () => {
    await connects(options(await newHome(), server.knownHostsPath));
  });

  it('asks the server for a key type the file knows', async () => {
    const onlyEcdsa = path.join(server.dir, 'known_hosts_ecdsa');
    await fs.writeFile(onlyEcdsa, `${serverKeys.find((l) => l.includes('ecdsa-sha2-'))}\n`);
    await connects(options(await newHome(), onlyEcdsa));
  });

  it('refuses an unknown host and says how to add it', async () => {
    const home = await newHome();
    const store = new SftpStore(location(), options(home));
    const err = await rejectsWith(store.stat('config'), 'denied', store);
    const hostKey = (await fs.readFile(path.join(server.dir, 'host_key.pub'), 'utf8')).split(' ')[1]!;
    assert.ok(
      err.message.endsWith(
        `: the host key of ${name()} (ssh-ed25519 ${fingerprint(Buffer.from(hostKey, 'base64'))}) is not in ~/.ssh/known_hosts; ` +
          `check it and add it (ssh-keyscan -p ${server.port} 127.0.0.1 >> ~/.ssh/known_hosts)`,
      ),
      err.message,
    );
    assert.ok(!err.message.includes(hostKey), 'the message holds the whole key');
    await assert.rejects(fs.access(path.join(home, '.ssh')), 'nothing was written');
  });

  it('refuses a host whose key changed, naming the file and line', async () => {
    const wrong = await newPublicKey(server.dir, 'ed25519');
    const file = path.join(server.dir, 'known_hosts_wrong');
    await fs.writeFile(file, `# lab\n${name()} ${wrong.type} ${wrong.base64}\n`);
    const store = new SftpStore(location(), options(await newHome(), file));
    const err = await rejectsWith(store.stat('config'), 'denied', store);
    assert.match(err.message, /WARNING: the host key of \S+ has CHANGED/);
    assert.ok(err.message.includes(`${file} line 2 holds ssh-ed25519 ${wrong.fingerprint}`), err.message);
    assert.match(err.message, /man in the middle/);
  });

  it('refuses a revoked host key', async () => {
    const file = path.join(server.dir, 'known_hosts_revoked');
    const ed25519 = serverKeys.find((l) => l.includes('ssh-ed25519'))!;
    await fs.writeFile(file, `${serverKeys.join('\n')}\n@revoked * ${ed25519.split(' ').slice(1).join(' ')}\n`);
    const store = new SftpStore(location(), options(await newHome(), file));
    const err = await rejectsWith(store.stat('config'), 'denied', store);
    assert.match(err.message, new RegExp(`marked @revoked in ${file} line 3`));
  });

  it('accept-new records an unknown host in ~/.ssh/known_hosts, then checks against it', async () => {
    const home = await newHome();
    await connects(options(home, 'accept-new'));
    const file = path.join(home, '.ssh', 'known_hosts');
    const recorded = await fs.readFile(file, 'utf8');
    assert.equal(recorded, `${serverKeys.find((l) => l.includes('ssh-ed25519'))}\n`);
    assert.equal((await fs.stat(file)).mode & 0o777, 0o600);
    assert.equal((await fs.stat(path.join(home, '.ssh'))).mode & 0o777, 0o700);
    await connects(options(home, 'accept-new'));
    await connects(options(home));
    assert.equal(await fs.readFile(file, 'utf8'), recorded, 'a known host is not recorded again');
  });

  it('accept-new appends to an existing file and records a host once when connecting twice at once', async () => {
    const home = await newHome();
    const file = path.join(home, '.ssh', 'known_hosts');
    await fs.mkdir(path.dirname(file));
    const unrelated = await newPublicKey(server.dir, 'ed25519');
    await fs.writeFile(file, `other.lan ${unrelated.type} ${unrelated.base64}`);
    await Promise.all([connects(options(home, 'accept-new')), connects(options(home, 'accept-new'))]);
    const lines = (await fs.readFile(file, 'utf8')).split('\n');
    assert.deepEqual(lines, [`other.lan ${unrelated.type} ${unrelated.base64}`, serverKeys.find((l) => l.includes('ssh-ed25519')), '']);
  });

  it('accept-new still refuses a changed key', async () => {
    const home = await newHome();
    const file = path.join(home, '.ssh', 'known_hosts');
    await fs.mkdir(path.dirname(file));
    const wrong = await newPublicKey(server.dir, 'ed25519');
    const before = `${name()} ${wrong.type} ${wrong.base64}\n`;
    await fs.writeFile(file, before);
    const store = new SftpStore(location(), options(home, 'accept-new'));
    const err = await rejectsWith(store.stat('config'), 'denied', store);
    assert.match(err.message, /WARNING: the host key of \S+ has CHANGED: ~\/\.ssh\/known_hosts line 1/);
    assert.equal(await fs.readFile(file, 'utf8'), before);
  });
});
