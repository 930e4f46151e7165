import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { parseS3Location } from '../src/store/locations.ts';
import { S3Store } from '../src/store/s3.ts';
import { StoreError } from '../src/store/store.ts';
import { rejectsWith, storeConformance } from './store-conformance.ts';
import { startS3Server, type S3Server } from './helpers/s3-server.ts';
import { objectName } from './helpers/names.ts';

const SECRET = 'wJalrXUtnFEMI-not-a-real-secret';

describe('S3 store on s3rver', () => {
  let server: S3Server;
  let env: Record<string, string>;
  before(async () => {
    server = await startS3Server();
    env = { AWS_ACCESS_KEY_ID: server.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: server.credentials.secretAccessKey };
  });
  after(() => server.stop());

  let n = 0;
  // Each store gets its own prefix in the one bucket, which also tests prefixes.
  storeConformance('s3', async () => new S3Store(`s3:${server.endpoint}/${server.bucket}/repo-${n++}/nested`, { env }));

  it('works at the root of the bucket', async () => {
    const store = new S3Store(`s3:${server.endpoint}/${server.bucket}`, { env });
    try {
      const key = objectName('keys', 'root');
      await store.put(key, Buffer.from('at the root'));
      assert.deepEqual((await store.get(key)).toString(), 'at the root');
      const listed = [];
      for await (const info of store.list('keys')) listed.push(info.name);
      assert.deepEqual(listed, [key]);
    } finally {
      await store.close();
    }
  });

  it('pages through long listings', async () => {
    const store = new S3Store(`s3:${server.endpoint}/${server.bucket}/paging`, { env, pageSize: 3 });
    try {
      const names = Array.from({ length: 10 }, (_, i) => objectName('index', i)).sort();
      for (const name of names) await store.put(name, Buffer.from(name));
      const listed = [];
      for await (const info of store.list('index')) listed.push(info.name);
      assert.deepEqual(listed.sort(), names);
    } finally {
      await store.close();
    }
  });

  it("maps an unknown access key to 'denied' without leaking the secret", async () => {
    const store = new S3Store(`s3:${server.endpoint}/${server.bucket}`, { env: { AWS_ACCESS_KEY_ID: 'NOBODY', AWS_SECRET_ACCESS_KEY: SECRET } });
    try {
      const err = await rejectsWith(store.get('config'), 'denied', store, 'config');
      assert.ok(!err.message.includes(SECRET));
      await rejectsWith(store.stat('config'), 'denied', store, 'config');
    } finally {
      await store.close();
    }
  });

  it("maps a stopped server to 'transient'", async () => {
    const doomed = await startS3Server();
    const store = new S3Store(`s3:${doomed.endpoint}/${doomed.bucket}`, { env });
    try {
      await store.put('config', Buffer.from('x'));
      await doomed.stop();
      await rejectsWith(store.get('config'), 'transient', store, 'config');
      await rejectsWith(store.put(objectName('keys', 'k'), Buffer.from('y')), 'transient', store, objectName('keys', 'k'));
    } finally {
      await store.close();
    }
  });
});

/** A fake S3 endpoint answering every request with what `answer` says, recording what it was asked. */
interface FakeAnswer {
  status: number;
  /** An S3 error code, sent in an XML error body. */
  code?: string;
  headers?: Record<string, string>;
  body?: string;
  /** Never answer (a request that takes for ever). */
  hang?: boolean;
}

async function fakeS3(answer: (req: http.IncomingMessage) => FakeAnswer) {
  const requests: { method: string; url: string; headers: http.IncomingHttpHeaders; cut?: boolean }[] = [];
  const server = http.createServer((req, res) => {
    const request: (typeof requests)[number] = { method: req.method!, url: req.url!, headers: req.headers };
    requests.push(request);
    // The client hung up before the answer.
    res.on('close', () => (request.cut = !res.writableEnded));
    req.resume();
    req.on('end', () => {
      const { status, code, headers, body, hang } = answer(req);
      if (hang) return;
      res.writeHead(status, { 'content-type': 'application/xml', ...headers });
      if (req.method === 'HEAD') res.end();
      else res.end(code ? `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>fake ${code}</Message></Error>` : body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const store = new S3Store(`s3:${endpoint}/bucket/prefix`, { env: { AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: SECRET } });
  return {
    store,
    requests,
    async close() {
      await store.close();
      // A request left hanging (hang: true) must not hold the server open.
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('S3 store against a fake server', () => {
  const cases = [
    { status: 403, code: 'AccessDenied', kind: 'denied' },
    { status: 403, code: 'SignatureDoesNotMatch', kind: 'denied' },
    { status: 403, code: 'InvalidAccessKeyId', kind: 'denied' },
    { status: 503, code: 'SlowDown', kind: 'transient' },
    { status: 500, code: 'InternalError', kind: 'transient' },
    { status: 507, code: 'XMinioStorageFull', kind: 'no-space' },
    { status: 400, code: 'InvalidArgument', kind: 'permanent' },
    { status: 404, code: 'NoSuchBucket', kind: 'permanent' },
  ] as const;
  for (const { status, code, kind } of cases) {
    it(`HTTP ${status} ${code} → '${kind}'`, async () => {
      const fake = await fakeS3(() => ({ status, code }));
      try {
        const err = await rejectsWith(fake.store.get(objectName('data', 'x')), kind, fake.store, objectName('data', 'x'));
        assert.ok(!err.message.includes(SECRET));
      } finally {
        await fake.close();
      }
    });
  }

  it("maps a bodiless HEAD 403 to 'denied'", async () => {
    const fake = await fakeS3(() => ({ status: 403 }));
    try {
      await rejectsWith(fake.store.stat('config'), 'denied', fake.store, 'config');
    } finally {
      await fake.close();
    }
  });

  it('sends If-None-Match: * and settles a lost race by comparing sizes', async () => {
    let heads = 0;
    const fake = await fakeS3((req) => {
      if (req.method === 'HEAD') return heads++ === 0 ? { status: 404 } : { status: 200, headers: { 'content-length': '5' } };
      return { status: 412, code: 'PreconditionFailed' };
    });
    try {
      assert.equal(await fake.store.put(objectName('index', 1), Buffer.from('12345')), false);
      const put = fake.requests.find((r) => r.method === 'PUT');
      assert.equal(put?.headers['if-none-match'], '*');
      assert.equal(put?.url.split('?')[0], `/bucket/prefix/${objectName('index', 1)}`);
      heads = 0;
      await rejectsWith(fake.store.put(objectName('index', 2), Buffer.from('123456')), 'conflict', fake.store, objectName('index', 2));
    } finally {
      await fake.close();
    }
  });

  it('uploads big objects in parts and makes completing the upload conditional too', async () => {
    const fake = await fakeS3((req) => {
      const url = new URL(req.url!, 'http://x');
      if (req.method === 'HEAD') return { status: 404 };
      if (req.method === 'POST' && url.searchParams.has('uploads')) {
        return { status: 200, body: '<InitiateMultipartUploadResult><Bucket>bucket</Bucket><Key>k</Key><UploadId>u1</UploadId></InitiateMultipartUploadResult>' };
      }
      if (req.method === 'PUT') return { status: 200, headers: { etag: `"part-${url.searchParams.get('partNumber')}"` } };
      return { status: 200, body: '<CompleteMultipartUploadResult><Bucket>bucket</Bucket><Key>k</Key><ETag>"x-2"</ETag></CompleteMultipartUploadResult>' };
    });
    try {
      assert.equal(await fake.store.put(objectName('data', 'big'), Buffer.alloc(20 * 1024 * 1024)), true);
      const calls = fake.requests.map((r) => `${r.method} ${new URL(r.url, 'http://x').search}`);
      assert.deepEqual(calls.filter((c) => c.startsWith('PUT')).sort(), ['PUT ?partNumber=1&uploadId=u1&x-id=UploadPart', 'PUT ?partNumber=2&uploadId=u1&x-id=UploadPart']);
      const complete = fake.requests.find((r) => r.method === 'POST' && r.url.includes('uploadId=u1'));
      assert.equal(complete?.headers['if-none-match'], '*');
    } finally {
      await fake.close();
    }
  });
});

// Regression (issue 13): lib-storage's abort stops further parts of a multipart upload but let those
// under way run to their end, so a detached destination's pack kept uploading.
describe('S3 store, a stopped upload', () => {
  it('cuts the requests under way off and aborts the multipart upload (fake server)', async () => {
    const fake = await fakeS3((req) => {
      const url = new URL(req.url!, 'http://x');
      if (req.method === 'HEAD') return { status: 404 };
      if (req.method === 'POST' && url.searchParams.has('uploads')) {
        return { status: 200, body: '<InitiateMultipartUploadResult><Bucket>bucket</Bucket><Key>k</Key><UploadId>u1</UploadId></InitiateMultipartUploadResult>' };
      }
      if (req.method === 'PUT') return { status: 200, hang: true };
      return { status: 204 };
    });
    const until = async (what: string, check: () => boolean): Promise<void> => {
      for (const deadline = Date.now() + 20_000; !check(); await new Promise((r) => setTimeout(r, 10))) assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    };
    try {
      const stop = new AbortController();
      const putting = fake.store.put(objectName('data', 'big'), Buffer.alloc(20 * 1024 * 1024), { signal: stop.signal });
      const parts = () => fake.requests.filter((r) => r.method === 'PUT');
      await until('both parts to be under way', () => parts().length === 2);
      stop.abort();
      await assert.rejects(putting, { name: 'AbortError' });
      await until('the parts under way to be cut off', () => parts().every((r) => r.cut));
      await until('the multipart upload to be aborted', () => fake.requests.some((r) => r.method === 'DELETE' && r.url.includes('uploadId=u1')));
      assert.ok(!fake.requests.some((r) => r.method === 'POST' && r.url.includes('uploadId=u1')), 'the upload was never completed');
    } finally {
      await fake.close();
    }
  });
});

describe('S3 locations', () => {
  it('parses endpoint, bucket and prefix', () => {
    assert.deepEqual(parseS3Location('s3:http://127.0.0.1:9000/bucket'), { endpoint: 'http://127.0.0.1:9000', bucket: 'bucket', prefix: '' });
    assert.deepEqual(parseS3Location('s3:https://s3.example.com/b/a/b/'), { endpoint: 'https://s3.example.com', bucket: 'b', prefix: 'a/b/' });
  });

  it('refuses malformed locations and never echoes credentials', () => {
    for (const bad of ['s3:ftp://host/bucket', 's3:http://host', 's3:http://host/', 's3:not a url', 's3:http://host/b?x=1']) {
      assert.throws(() => parseS3Location(bad), (err) => err instanceof StoreError && err.kind === 'permanent' && /s3:http\(s\):\/\//.test(err.message), bad);
    }
    assert.throws(() => parseS3Location(`s3:http://AKID:${SECRET}@host/b`), (err) => err instanceof StoreError && !err.message.includes(SECRET));
  });
});
