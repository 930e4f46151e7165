// How the SFTP store logs in as people set it up, against OpenSSH on loopback: keys in a real
// ssh-agent (SSH_AUTH_SOCK), ~/.ssh/config (Host aliases, HostName, User, Port, IdentityFile, Include),
// and restic's sftp:user@host:/path syntax.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parseSftpLocation } from '../src/store/locations.ts';
import { SftpStore } from '../src/store/sftp.ts';
import { sftpTarget } from '../src/store/ssh-config.ts';
import { StoreError } from '../src/store/store.ts';
import { startSshAgent, type SshAgent } from './helpers/ssh-agent.ts';
import { requireSshd, startSshd, type SshServer } from './helpers/sshd.ts';
import { rejectsWith } from './store-conformance.ts';

const run = promisify(execFile);

it('has an OpenSSH server to test against', () => requireSshd());

/** A home directory of its own: an empty ~/.ssh, then whatever the test puts there. */
async function newHome(root: string, name: string): Promise<string> {
  const home = path.join(root, name);
  await fs.mkdir(path.join(home, '.ssh'), { recursive: true, mode: 0o700 });
  return home;
}

async function works(store: SftpStore, marker: string): Promise<void> {
  try {
    await store.put('config', Buffer.from(marker));
    assert.equal((await store.get('config')).toString(), marker);
  } finally {
    await store.close();
  }
}

describe('SFTP credentials and ~/.ssh/config', () => {
  let server: SshServer;
  let agent: SshAgent;
  let knownHosts: Record<string, string>;
  before(async () => {
    server = await startSshd();
    agent = await startSshAgent();
    knownHosts = { COFFER_SFTP_KNOWN_HOSTS: server.knownHostsPath };
  });
  after(async () => {
    await agent.stop();
    await server.stop();
  });
  const direct = (dir: string): string => `sftp://${server.user}@${server.host}:${server.port}${path.join(server.dir, dir)}`;

  it('logs in with a key held by ssh-agent (SSH_AUTH_SOCK), with no key file anywhere', async () => {
    const home = await newHome(server.dir, 'agent-home');
    const env = { ...knownHosts, SSH_AUTH_SOCK: agent.socket };
    const before = new SftpStore(direct('agent'), { env, homeDir: home });
    await rejectsWith(before.stat('config'), 'denied', before, 'config');
    await before.close();
    await agent.add(server.keyPath);
    await works(new SftpStore(direct('agent'), { env, homeDir: home }), 'agent');
  });

  it('leaves a key protected by a passphrase to the agent, and says to ssh-add it when there is none', async () => {
    const home = await newHome(server.dir, 'locked-home');
    const locked = path.join(home, '.ssh', 'id_ed25519');
    await fs.copyFile(server.keyPath, locked);
    await run('ssh-keygen', ['-q', '-p', '-P', '', '-N', 'a passphrase', '-f', locked]);
    const alone = new SftpStore(direct('locked'), { env: knownHosts, homeDir: home });
    const err = await rejectsWith(alone.stat('config'), 'denied', alone);
    assert.match(err.message, /~\/\.ssh\/id_ed25519 needs its passphrase \(load it into ssh-agent: ssh-add ~\/\.ssh\/id_ed25519\)/);
    await alone.close();
    await works(new SftpStore(direct('locked'), { env: { ...knownHosts, SSH_AUTH_SOCK: agent.socket }, homeDir: home }), 'locked');
  });

  it('names every credential it tried when the server refuses them all', async () => {
    const home = await newHome(server.dir, 'refused-home');
    // The server's host key is a valid private key that is not in authorized_keys.
    await fs.copyFile(path.join(server.dir, 'host_key'), path.join(home, '.ssh', 'id_ed25519'));
    const store = new SftpStore(direct('refused').replace(`${server.user}@`, 'nobody-here@'), { env: knownHosts, homeDir: home });
    const err = await rejectsWith(store.stat('config'), 'denied', store, 'config');
    assert.match(err.message, /tried ~\/\.ssh\/id_ed25519 for user nobody-here/);
    await store.close();
  });

  it("uses the agent IdentityAgent of ~/.ssh/config names, and none for 'IdentityAgent none'", async () => {
    const home = await newHome(server.dir, 'identity-agent-home');
    await agent.add(server.keyPath);
    await fs.writeFile(path.join(home, '.ssh', 'config'), `Host 127.0.0.1\n  IdentityAgent ${agent.socket}\nHost noagent\n  HostName ${server.host}\n  IdentityAgent none\n`);
    await works(new SftpStore(direct('identity-agent'), { env: knownHosts, homeDir: home }), 'identity agent');
    const without = new SftpStore(`sftp://${server.user}@noagent:${server.port}${path.join(server.dir, 'noagent')}`, { env: { ...knownHosts, SSH_AUTH_SOCK: agent.socket }, homeDir: home });
    await rejectsWith(without.stat('config'), 'denied', without);
    await without.close();
  });

  it('says when SSH_AUTH_SOCK names no agent', async () => {
    const home = await newHome(server.dir, 'dead-agent-home');
    const store = new SftpStore(direct('dead'), { env: { ...knownHosts, SSH_AUTH_SOCK: path.join(home, 'gone.sock') }, homeDir: home });
    const err = await rejectsWith(store.stat('config'), 'denied', store);
    assert.match(err.message, /SSH_AUTH_SOCK names .*gone\.sock, where no ssh-agent listens/);
    await store.close();
  });

  it('follows a Host alias of ~/.ssh/config (HostName, User, Port, IdentityFile), in restic syntax and as a URL', async () => {
    const home = await newHome(server.dir, 'config-home');
    await fs.copyFile(server.keyPath, path.join(home, '.ssh', 'nas_key'));
    await fs.writeFile(
      path.join(home, '.ssh', 'config'),
      `# the NAS\nHost backup-nas nas\n    HostName ${server.host}\n    Port ${server.port}\n    User ${server.user}\n    IdentityFile ~/.ssh/nas_key\n\nHost *\n    ServerAliveInterval 30\n`,
    );
    const repo = path.join(server.dir, 'aliased');
    const restic = new SftpStore(`sftp:backup-nas:${repo}`, { env: knownHosts, homeDir: home });
    assert.equal(restic.location, `sftp://${server.user}@backup-nas:${server.port}${repo}`);
    await works(restic, 'restic syntax');
    await works(new SftpStore(`sftp://nas${repo}-url`, { env: knownHosts, homeDir: home }), 'url');
    // What the location says wins over the config, as on ssh's command line.
    const { target } = sftpTarget(`sftp://other@nas:2222${repo}`, home);
    assert.deepEqual([target.user, target.port, target.hostName], ['other', 2222, server.host]);
  });

  it('reads Include files, expanding ~ and %-tokens in IdentityFile', async () => {
    const home = await newHome(server.dir, 'include-home');
    await fs.mkdir(path.join(home, '.ssh', 'conf.d'));
    await fs.copyFile(server.keyPath, path.join(home, '.ssh', `key-for-${server.host}`));
    await fs.writeFile(path.join(home, '.ssh', 'config'), 'Include conf.d/*.conf\n');
    await fs.writeFile(path.join(home, '.ssh', 'conf.d', 'nas.conf'), `Host included\n  HostName ${server.host}\n  Port ${server.port}\n  User ${server.user}\n  IdentityFile %d/.ssh/key-for-%h\n`);
    await works(new SftpStore(`sftp:included:${path.join(server.dir, 'included')}`, { env: knownHosts, homeDir: home }), 'include');
  });

  it('refuses a host reached through ProxyJump, and a bad Port, in one line', async () => {
    const home = await newHome(server.dir, 'proxy-home');
    await fs.writeFile(path.join(home, '.ssh', 'config'), `Host behind\n  HostName ${server.host}\n  ProxyJump bastion\nHost badport\n  Port none\n`);
    const store = new SftpStore(`sftp:behind:${path.join(server.dir, 'proxy')}`, { env: knownHosts, homeDir: home });
    const err = await rejectsWith(store.stat('config'), 'permanent', store, 'config');
    assert.match(err.message, /reaches behind through ProxyJump bastion/);
    await store.close();
    assert.throws(() => new SftpStore('sftp:badport:/srv', { homeDir: home }), (e) => e instanceof StoreError && /port "none"/.test(e.message) && !e.message.includes('\n'));
  });
});

describe("restic's sftp:[user@]host:path syntax", () => {
  it('parses absolute and home-relative paths, and IPv6 hosts', () => {
    assert.deepEqual(parseSftpLocation('sftp:backup@nas.local:/srv/coffer/'), { user: 'backup', host: 'nas.local', root: '/srv/coffer' });
    assert.deepEqual(parseSftpLocation('sftp:nas.local:coffer'), { host: 'nas.local', root: 'coffer' });
    assert.deepEqual(parseSftpLocation('sftp:nas.local:~/coffer'), { host: 'nas.local', root: 'coffer' });
    assert.deepEqual(parseSftpLocation('sftp:me@[::1]:/srv'), { user: 'me', host: '::1', root: '/srv' });
    assert.equal(sftpTarget('sftp:me@[::1]:/srv', os.tmpdir()).display, 'sftp://me@[::1]/srv');
    assert.equal(sftpTarget('sftp:me@nas:coffer', os.tmpdir()).display, 'sftp://me@nas/~/coffer');
    // Both spellings name one store.
    assert.equal(sftpTarget('sftp:me@nas:/srv/c', os.tmpdir()).display, sftpTarget('sftp://me@nas/srv/c/', os.tmpdir()).display);
  });

  it('refuses what names no host or no directory, in one line', () => {
    for (const bad of ['sftp:', 'sftp:nas', 'sftp:nas:', 'sftp:@nas:/srv', 'sftp:/srv', 'sftp:me@:/srv']) {
      assert.throws(() => parseSftpLocation(bad), (err) => err instanceof StoreError && err.kind === 'permanent' && !err.message.includes('\n'), bad);
    }
  });
});
