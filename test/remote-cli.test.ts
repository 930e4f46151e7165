// Remote locations through the real CLI, set up as people set them up: rest: on `rclone serve restic`
// (also append-only), rclone: over stdio, S3 with a profile (AWS_PROFILE) behind a self-signed
// certificate (--cacert), and SFTP in restic's syntax through ~/.ssh/config and ssh-agent. One
// repository replicated to all four, checked on all of them; each replica then restores on its own.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { coffer, ok, tempDir } from './helpers/cli.ts';
import { emptyRcloneConfig, startRcloneServer, type RcloneServer } from './helpers/rclone.ts';
import { startS3Server, type S3Server } from './helpers/s3-server.ts';
import { startSshAgent, type SshAgent } from './helpers/ssh-agent.ts';
import { startSshd, type SshServer } from './helpers/sshd.ts';
import { selfSignedCertificate } from './helpers/tls.ts';
import { seededBytes, treeDifferences } from './helpers/tree.ts';

let scratch: string;
let rest: RcloneServer;
let appendOnly: RcloneServer;
let s3: S3Server;
let sshd: SshServer;
let agent: SshAgent;
let cert: string;
/** The environment of every coffer run: a home with ~/.aws and ~/.ssh of its own, an agent, rclone's config. */
let env: Record<string, string>;

before(async () => {
  scratch = fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', 'coffer-remote-cli-'));
  const home = path.join(scratch, 'home');
  fs.mkdirSync(path.join(home, '.ssh'), { recursive: true, mode: 0o700 });
  fs.mkdirSync(path.join(home, '.aws'));
  const files = await selfSignedCertificate(scratch, 's3');
  cert = files.cert;
  [rest, appendOnly, s3, sshd, agent] = await Promise.all([startRcloneServer(), startRcloneServer({ appendOnly: true }), startS3Server('remote', { tls: files }), startSshd(), startSshAgent()]);
  await agent.add(sshd.keyPath);
  fs.writeFileSync(path.join(home, '.aws', 'credentials'), `[backup]\naws_access_key_id = ${s3.credentials.accessKeyId}\naws_secret_access_key = ${s3.credentials.secretAccessKey}\n`);
  fs.writeFileSync(path.join(home, '.ssh', 'config'), `Host nas\n  HostName ${sshd.host}\n  Port ${sshd.port}\n  User ${sshd.user}\n`);
  fs.copyFileSync(sshd.knownHostsPath, path.join(home, '.ssh', 'known_hosts'));
  env = {
    HOME: home,
    AWS_PROFILE: 'backup',
    SSH_AUTH_SOCK: agent.socket,
    RCLONE_CONFIG: await emptyRcloneConfig(scratch),
    // None of these may come from the machine running the tests.
    AWS_ACCESS_KEY_ID: '',
    AWS_SECRET_ACCESS_KEY: '',
    AWS_SHARED_CREDENTIALS_FILE: '',
    AWS_CONFIG_FILE: '',
    COFFER_SFTP_KEY: '',
    COFFER_SFTP_KNOWN_HOSTS: '',
  };
  for (const [key, value] of Object.entries(env)) if (value === '') delete env[key];
});

after(async () => {
  await Promise.all([rest?.stop(), appendOnly?.stop(), s3?.stop(), sshd?.stop(), agent?.stop()]);
  fs.rmSync(scratch, { recursive: true, force: true });
});

function run(args: string[]) {
  return ok(args, { env: withoutUnset() });
}

/** The run environment, with the variables the test unsets removed from the inherited ones. */
function withoutUnset(): Record<string, string | undefined> {
  const cleared = Object.fromEntries(['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SHARED_CREDENTIALS_FILE', 'AWS_CONFIG_FILE', 'COFFER_SFTP_KEY', 'COFFER_SFTP_KNOWN_HOSTS'].map((k) => [k, undefined]));
  return { ...cleared, ...env };
}

/** Where a restore into `target` put `src`: under its name, or (snapshots of absolute paths) its whole path. */
function restored(target: string, src: string): string {
  const byName = path.join(target, path.basename(src));
  return fs.existsSync(byName) ? byName : path.join(target, src);
}

function source(dir: string): string {
  const root = path.join(dir, 'source');
  fs.mkdirSync(path.join(root, 'docs'), { recursive: true });
  fs.writeFileSync(path.join(root, 'docs', 'letter.txt'), 'dear coffer\n'.repeat(500));
  fs.writeFileSync(path.join(root, 'photo.bin'), seededBytes('remote', 3 * 1024 * 1024));
  fs.writeFileSync(path.join(root, 'empty'), '');
  return root;
}

test('one repository on rest:, rclone:, s3: and sftp: at once; check reads every replica, each restores on its own', { timeout: 300_000 }, async (t) => {
  const dir = tempDir(t);
  const src = source(dir);
  const locations = [
    `rest:${rest.url}fleet/`,
    `rclone::local:${path.join(scratch, 'rclone-stdio')}`,
    // Without a scheme: HTTPS.
    `s3:${s3.endpoint.replace('https://', '')}/${s3.bucket}/fleet`,
    `sftp:nas:${path.join(sshd.dir, 'fleet')}`,
  ];
  const repos = locations.flatMap((l) => ['--repo', l]);
  const tls = ['--cacert', cert];
  run(['init', ...repos, ...tls]);
  run(['backup', ...repos, ...tls, src]);
  const doctor = run(['doctor', ...repos, ...tls]);
  // Reads, decrypts and verifies every pack on every replica.
  run(['check', '--read-data', ...repos, ...tls]);
  for (const location of locations) {
    const scheme = location.slice(0, location.indexOf(':'));
    assert.match(doctor.stdout, new RegExp(`ok +write ${scheme}:.*test-write passed`), doctor.stdout);
    const target = path.join(dir, `restored-${scheme}`);
    run(['restore', 'latest', '--repo', location, ...tls, '--target', target]);
    assert.deepEqual(treeDifferences(src, restored(target, src)), []);
  }
});

test('a backup to an append-only rest-server works; nothing is deleted there', { timeout: 300_000 }, async (t) => {
  const dir = tempDir(t);
  const src = source(dir);
  const repo = `rest:${appendOnly.url}kept/`;
  run(['init', '--repo', repo]);
  run(['backup', '--repo', repo, src]);
  const target = path.join(dir, 'restored');
  run(['restore', 'latest', '--repo', repo, '--target', target]);
  run(['check', '--repo', repo]);
  const doctor = run(['doctor', '--repo', repo]);
  assert.match(doctor.stdout, /ok +write rest:.*test-write passed/);
  assert.deepEqual(treeDifferences(src, restored(target, src)), []);
  // doctor's probe went to locks/, which an append-only server lets go of; nothing else was deleted.
  assert.deepEqual(fs.readdirSync(path.join(appendOnly.dir, 'kept', 'locks')), []);
  assert.equal(fs.readdirSync(path.join(appendOnly.dir, 'kept', 'snapshots')).length, 1);
  // What restic's rest-server insists on (rclone does not check it): every object but config in one of
  // restic's folders, named by the SHA-256 of its bytes, packs in data/<first two digits>/.
  const served = path.join(appendOnly.dir, 'kept');
  for (const file of fs.readdirSync(served, { recursive: true, encoding: 'utf8' })) {
    if (file === 'config' || fs.statSync(path.join(served, file)).isDirectory()) continue;
    const name = path.basename(file);
    assert.match(file, /^(data\/[0-9a-f]{2}|keys|index|snapshots|locks)\/[0-9a-f]{64}$/);
    assert.equal(crypto.createHash('sha256').update(fs.readFileSync(path.join(served, file))).digest('hex'), name, file);
    if (file.startsWith('data/')) assert.equal(file.slice(5, 7), name.slice(0, 2));
  }
});

test('an untrusted certificate, a missing profile, a missing --cacert file, an unknown rclone remote and a wrong scheme fail in one line', { timeout: 300_000 }, async () => {
  const bucket = `s3:${s3.endpoint.replace('https://', '')}/${s3.bucket}/refused`;
  const cases: [string[], Record<string, string | undefined>, RegExp][] = [
    [['init', '--repo', bucket], {}, /certificate is not trusted.*--cacert FILE/],
    [['init', '--repo', bucket, '--cacert', cert], { AWS_PROFILE: 'nosuchprofile' }, /profile nosuchprofile of AWS_PROFILE/],
    [['init', '--repo', bucket, '--cacert', path.join(scratch, 'nothing.pem')], {}, /cannot read the CA certificate file .*nothing\.pem \(ENOENT\)/],
    [['init', '--repo', 'rclone:nosuchremote:repo'], {}, /rclone could not serve nosuchremote:repo/],
    [['init', '--repo', 'rest:htp://127.0.0.1:1/'], {}, /scheme htp:/],
  ];
  for (const [args, extra, expected] of cases) {
    const r = coffer(args, { env: { ...withoutUnset(), ...extra } });
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /^coffer: /);
    assert.match(lines[0]!, expected);
  }
  const doctor = coffer(['doctor', '--repo', 'rest:ftp://ann:hunter2@127.0.0.1:1/'], { env: withoutUnset() });
  assert.equal(doctor.code, 1);
  assert.match(doctor.stdout, /^FAIL +repository: the REST location has scheme ftp:/m);
  assert.ok(!doctor.stdout.includes('hunter2') && !doctor.stderr.includes('hunter2'));
});

test("a plan's cacert, and COFFER_CACERT, trust the self-signed certificate as --cacert does", { timeout: 300_000 }, async (t) => {
  const dir = tempDir(t);
  const bucket = `s3:${s3.endpoint.replace('https://', '')}/${s3.bucket}/planned`;
  const config = path.join(dir, 'config.yaml');
  fs.writeFileSync(config, `plans:\n  offsite:\n    repos: ["${bucket}"]\n    paths: ["${dir}"]\n    cacert: ["${cert}"]\n`);
  // No repository there yet: doctor says so, after the write check that matters here.
  const planned = coffer(['doctor', '--plan', 'offsite', '--config', config], { env: withoutUnset() });
  assert.match(planned.stdout, /ok +write s3:https:\/\/127\.0\.0\.1:\d+\/remote\/planned: test-write passed/);
  const fromEnv = coffer(['doctor', '--repo', bucket], { env: { ...withoutUnset(), COFFER_CACERT: cert } });
  assert.match(fromEnv.stdout, /ok +write s3:.*test-write passed/);
});
