// Starts s3rver for the S3 store tests. It runs in a child process under --openssl-legacy-provider
// because its ListObjectsV2 continuation tokens use DES, which OpenSSL 3 refuses otherwise (paging
// would fail with InternalError); a separate process keeps that flag out of the test process.
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { listeningPort } from './child-port.ts';

// Tests never ask the EC2 instance metadata service (a link-local address, not loopback) for
// credentials, which the AWS SDK's chain does last when it finds none; the coffer children inherit this.
process.env.AWS_EC2_METADATA_DISABLED = 'true';

export interface S3ServerOptions {
  /** PEM files: serve HTTPS with this certificate and key. */
  readonly tls?: { readonly cert: string; readonly key: string };
}

export interface S3Server {
  /** http(s)://127.0.0.1:<port> */
  readonly endpoint: string;
  readonly bucket: string;
  /** The only key pair s3rver accepts (it checks the key id but not the signature). */
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
  /** Where s3rver keeps its files (to age or damage objects behind its back). */
  readonly directory: string;
  stop(): Promise<void>;
}

const s3rverMain = createRequire(import.meta.url).resolve('s3rver');

// The child exits when its stdin closes, so a test process that dies never leaves a server behind.
// s3rver stores multipart uploads in <bucket>/._S3rver_uploads/<id>/ but answers ListMultipartUploads
// and AbortMultipartUpload with NotImplemented; the middleware in front answers both from those folders
// (Initiated = the folder's mtime), so prune's clean-up of incomplete uploads runs against this server.
const CHILD_SCRIPT = `
const fs = require('node:fs');
const path = require('node:path');
const S3rver = require(process.argv[1]);
const tls = process.argv[4] ? { cert: fs.readFileSync(process.argv[4]), key: fs.readFileSync(process.argv[5]) } : {};
const directory = process.argv[2];
const app = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory,
  configureBuckets: [{ name: process.argv[3], configs: [] }], ...tls });
const xml = (text) => text.replace(/[<>&'"]/g, (c) => '&#' + c.charCodeAt(0) + ';');
app.middleware.unshift(async (ctx, next) => {
  // The SDK addresses the bucket as /bucket/ (trailing slash), an object as /bucket/key.
  const m = /^\\/([^/]+)(?:\\/(.*))?$/.exec(ctx.path);
  if (!m) return next();
  const root = path.join(directory, m[1], '._S3rver_uploads');
  if (ctx.method === 'GET' && !m[2] && 'uploads' in ctx.query) {
    const prefix = ctx.query.prefix || '';
    const ids = fs.existsSync(root) ? fs.readdirSync(root) : [];
    const uploads = ids
      .map((id) => ({ id, key: fs.readFileSync(path.join(root, id, 'key'), 'utf8'), initiated: fs.statSync(path.join(root, id)).mtime }))
      .filter((u) => u.key.startsWith(prefix));
    ctx.type = 'application/xml';
    ctx.body = '<?xml version="1.0" encoding="UTF-8"?><ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
      '<Bucket>' + xml(m[1]) + '</Bucket><IsTruncated>false</IsTruncated>' +
      uploads.map((u) => '<Upload><Key>' + xml(u.key) + '</Key><UploadId>' + u.id + '</UploadId><Initiated>' + u.initiated.toISOString() + '</Initiated></Upload>').join('') +
      '</ListMultipartUploadsResult>';
    return;
  }
  if (ctx.method === 'DELETE' && m[2] && typeof ctx.query.uploadId === 'string' && /^[0-9a-f]+$/.test(ctx.query.uploadId)) {
    fs.rmSync(path.join(root, ctx.query.uploadId), { recursive: true, force: true });
    ctx.status = 204;
    return;
  }
  return next();
});
app.run().then(({ port }) => console.log('listening on ' + port));
process.stdin.on('end', () => process.exit(0)).resume();
`;

export async function startS3Server(bucket = 'coffer-test', options: S3ServerOptions = {}): Promise<S3Server> {
  const directory = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-s3rver-'));
  const tlsFiles = options.tls ? [options.tls.cert, options.tls.key] : [];
  const child = spawn(process.execPath, ['--openssl-legacy-provider', '-e', CHILD_SCRIPT, s3rverMain, directory, bucket, ...tlsFiles], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await listeningPort(child, 's3rver').catch(async (err: unknown) => {
    await fs.rm(directory, { recursive: true, force: true });
    throw err;
  });
  let stopped: Promise<void> | undefined;
  return {
    endpoint: `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    bucket,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    directory,
    stop() {
      stopped ??= (async () => {
        child.kill('SIGKILL');
        await exited;
        await fs.rm(directory, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}
