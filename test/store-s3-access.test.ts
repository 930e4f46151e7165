// How the S3 store reaches a server as people set it up: credentials from the AWS SDK's chain
// (profiles of the shared files, AWS_PROFILE), self-hosted HTTPS with a self-signed certificate
// (--cacert, --insecure-tls), and s3:host/bucket without a scheme.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseS3Location } from '../src/store/locations.ts';
import { openStore } from '../src/store/open-store.ts';
import { S3Store, regionOfEndpoint } from '../src/store/s3.ts';
import { StoreError } from '../src/store/store.ts';
import { startS3Server, type S3Server } from './helpers/s3-server.ts';
import { selfSignedCertificate } from './helpers/tls.ts';

const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-s3-access-'));
after(() => fs.rm(scratch, { recursive: true, force: true }));

// The SDK's chain reads the shared files named by process.env itself, and caches what it read by file
// name: each change of the files is written under new names.
for (const name of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE', 'AWS_REGION', 'AWS_DEFAULT_REGION']) delete process.env[name];
let generation = 0;
async function awsFiles(credentials: string, config = ''): Promise<void> {
  generation++;
  process.env.AWS_SHARED_CREDENTIALS_FILE = path.join(scratch, `credentials-${generation}`);
  process.env.AWS_CONFIG_FILE = path.join(scratch, `config-${generation}`);
  await fs.writeFile(process.env.AWS_SHARED_CREDENTIALS_FILE, credentials);
  await fs.writeFile(process.env.AWS_CONFIG_FILE, config);
}
await awsFiles('');

/** An object name of the layout, for writing something. */
const KEY = `keys/${'0'.repeat(64)}`;

async function roundTrip(store: S3Store): Promise<void> {
  try {
    await store.put(KEY, Buffer.from('through the chain'));
    assert.equal((await store.get(KEY)).toString(), 'through the chain');
    await store.delete(KEY);
  } finally {
    await store.close();
  }
}

async function refusal(promise: Promise<unknown>): Promise<StoreError> {
  const err = await promise.then(
    () => assert.fail('expected a refusal'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof StoreError, String(err));
  assert.doesNotMatch(err.message, /\n/);
  return err;
}

describe('S3 credentials from the AWS SDK chain', () => {
  let server: S3Server;
  let location: string;
  before(async () => {
    server = await startS3Server();
    location = `s3:${server.endpoint}/${server.bucket}/chain`;
  });
  after(() => server.stop());

  it('uses the profile AWS_PROFILE names, even over a key pair in the environment', async () => {
    await awsFiles('[coffer]\naws_access_key_id = S3RVER\naws_secret_access_key = S3RVER\n');
    await roundTrip(await S3Store.open(location, { env: { AWS_PROFILE: 'coffer' } }));
    await roundTrip(await S3Store.open(location, { env: { AWS_PROFILE: 'coffer', AWS_ACCESS_KEY_ID: 'WRONG', AWS_SECRET_ACCESS_KEY: 'WRONG' } }));
  });

  it('uses the default profile, from the credentials file or the config file', async () => {
    await awsFiles('[default]\naws_access_key_id = S3RVER\naws_secret_access_key = S3RVER\n');
    await roundTrip(await S3Store.open(location, { env: {} }));
    await awsFiles('', '[default]\naws_access_key_id = S3RVER\naws_secret_access_key = S3RVER\n');
    await roundTrip(await S3Store.open(location, { env: {} }));
  });

  it('keeps AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY working', async () => {
    await awsFiles('');
    await roundTrip(await S3Store.open(location, { env: { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' } }));
  });

  it("uses a container's role (AWS_CONTAINER_CREDENTIALS_FULL_URI, as on ECS or EKS)", async () => {
    await awsFiles('');
    const asked: string[] = [];
    const endpoint = http.createServer((req, res) => {
      asked.push(`${req.url} ${req.headers.authorization}`);
      const expiration = new Date(Date.now() + 3600_000).toISOString();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ AccessKeyId: 'S3RVER', SecretAccessKey: 'S3RVER', Token: 'session', Expiration: expiration }));
    });
    await new Promise<void>((resolve) => endpoint.listen(0, '127.0.0.1', resolve));
    process.env.AWS_CONTAINER_CREDENTIALS_FULL_URI = `http://127.0.0.1:${(endpoint.address() as AddressInfo).port}/role`;
    process.env.AWS_CONTAINER_AUTHORIZATION_TOKEN = 'task-token';
    try {
      await roundTrip(await S3Store.open(location, { env: {} }));
      assert.deepEqual(asked, ['/role task-token']);
    } finally {
      delete process.env.AWS_CONTAINER_CREDENTIALS_FULL_URI;
      delete process.env.AWS_CONTAINER_AUTHORIZATION_TOKEN;
      await new Promise((resolve) => endpoint.close(resolve));
    }
  });

  it('says in one line what to set when there are no credentials, or no such profile', async () => {
    await awsFiles('');
    const none = await refusal(S3Store.open(location, { env: {} }));
    assert.equal(none.kind, 'denied');
    assert.match(none.message, /no S3 credentials found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE/);
    assert.ok(none.message.startsWith(`s3:${server.endpoint}`), none.message);
    const noProfile = await refusal(S3Store.open(location, { env: { AWS_PROFILE: 'nosuchprofile' } }));
    assert.equal(noProfile.kind, 'denied');
    assert.match(noProfile.message, /nosuchprofile.*set AWS_ACCESS_KEY_ID/);
  });

  it('reports a key the server does not know as denied, naming what to check', async () => {
    await awsFiles('[coffer]\naws_access_key_id = NOBODY\naws_secret_access_key = x\n');
    const store = await S3Store.open(location, { env: { AWS_PROFILE: 'coffer' } });
    try {
      const err = await refusal(store.stat('config'));
      assert.equal(err.kind, 'denied');
      assert.match(err.message, /AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \(or the profile of AWS_PROFILE\)/);
    } finally {
      await store.close();
    }
  });

  it('fails opening through openStore once, and every later call with the same error', async () => {
    await awsFiles('');
    const store = openStore(location, { s3: { env: {} } });
    const first = await store.stat('config').catch((err: unknown) => err);
    assert.ok(first instanceof StoreError && first.kind === 'denied', String(first));
    await assert.rejects(store.get('config'), (err) => err === first);
    await store.close();
  });
});

describe('S3 regions', () => {
  /** A server that answers every request with 404 and records the region each request is signed for. */
  async function signedRegion(env: Record<string, string>): Promise<string | undefined> {
    let region: string | undefined;
    const server = http.createServer((req, res) => {
      region ??= /Credential=[^/]+\/\d+\/([^/]+)\//.exec(req.headers.authorization ?? '')?.[1];
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const store = await S3Store.open(`s3:http://127.0.0.1:${(server.address() as AddressInfo).port}/bucket`, { env: { AWS_ACCESS_KEY_ID: 'A', AWS_SECRET_ACCESS_KEY: 'B', ...env } });
    try {
      await store.stat('config');
    } finally {
      await store.close();
      await new Promise((resolve) => server.close(resolve));
    }
    return region;
  }

  it("signs for AWS_REGION, else AWS_DEFAULT_REGION, else the profile's region, else us-east-1", async () => {
    await awsFiles('', '[default]\nregion = eu-west-3\n[profile other]\nregion = ap-south-1\n');
    assert.equal(await signedRegion({ AWS_REGION: 'ca-central-1', AWS_DEFAULT_REGION: 'eu-north-1' }), 'ca-central-1');
    assert.equal(await signedRegion({ AWS_DEFAULT_REGION: 'eu-north-1' }), 'eu-north-1');
    assert.equal(await signedRegion({}), 'eu-west-3');
    await awsFiles('');
    assert.equal(await signedRegion({}), 'us-east-1');
  });

  it('reads the region out of an AWS endpoint', () => {
    assert.equal(regionOfEndpoint('https://s3.eu-central-1.amazonaws.com'), 'eu-central-1');
    assert.equal(regionOfEndpoint('https://s3-us-west-2.amazonaws.com'), 'us-west-2');
    assert.equal(regionOfEndpoint('https://s3.dualstack.ap-southeast-2.amazonaws.com'), 'ap-southeast-2');
    assert.equal(regionOfEndpoint('https://s3.amazonaws.com'), undefined);
    assert.equal(regionOfEndpoint('https://minio.example.com:9000'), undefined);
  });
});

describe('S3 over HTTPS with a self-signed certificate (s3rver)', () => {
  let server: S3Server;
  let cert: string;
  let location: string;
  const env = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' };
  before(async () => {
    const files = await selfSignedCertificate(scratch, 's3');
    cert = files.cert;
    server = await startS3Server('secure', { tls: files });
    // Without a scheme: HTTPS, as restic reads it.
    location = `s3:${server.endpoint.replace('https://', '')}/${server.bucket}/repo`;
  });
  after(() => server.stop());

  it('refuses the certificate without --cacert, saying what to do', async () => {
    const store = await S3Store.open(location, { env });
    try {
      const err = await refusal(store.stat('config'));
      assert.equal(err.kind, 'denied');
      assert.match(err.message, /certificate is not trusted.*--cacert FILE.*--insecure-tls/);
    } finally {
      await store.close();
    }
  });

  it('accepts it with --cacert, and any certificate with --insecure-tls', async () => {
    await roundTrip(await S3Store.open(location, { env, tls: { caFiles: [cert] } }));
    await roundTrip(await S3Store.open(location, { env, tls: { insecure: true } }));
  });
});

describe('S3 locations', () => {
  it('read s3:host/bucket without a scheme as HTTPS', () => {
    assert.deepEqual(parseS3Location('s3:minio.lan:9000/backups/coffer'), { endpoint: 'https://minio.lan:9000', bucket: 'backups', prefix: 'coffer/' });
    assert.deepEqual(parseS3Location('s3:s3.amazonaws.com/bucket'), { endpoint: 'https://s3.amazonaws.com', bucket: 'bucket', prefix: '' });
    assert.deepEqual(parseS3Location('s3:http://127.0.0.1:9000/b'), { endpoint: 'http://127.0.0.1:9000', bucket: 'b', prefix: '' });
    // One repository, however it is spelled.
    assert.equal(openStore('s3:minio.lan/b/p').location, openStore('s3:https://minio.lan/b/p/').location);
  });

  it('refuse wrong schemes and the AWS CLI form in one line', () => {
    for (const [bad, expected] of [
      ['s3://bucket/prefix', /AWS CLI's form/],
      ['s3:htps://host/bucket', /scheme htps:/],
      ['s3:https:/host/bucket', /lacks the \/\/ after https:/],
      ['s3:ftp://host/bucket', /scheme ftp:/],
      ['s3:host', /names no bucket/],
      ['s3:', /names no bucket|not a valid URL/],
      ['s3:https://KEY:hunter2@host/bucket', /must not hold credentials/],
    ] as const) {
      assert.throws(
        () => parseS3Location(bad),
        (err) => err instanceof StoreError && err.kind === 'permanent' && expected.test(err.message) && !err.message.includes('\n') && !err.message.includes('hunter2'),
        bad,
      );
    }
  });
});
