// An HTTP proxy in front of a loopback server (s3rver) that holds every request for a fixed delay before
// passing it on, and writes down what went through. Both tools of a comparison can be pointed at it
// (restic speaks S3 to it as Coffer does), so the delay is a network's round trip for either; tests use
// it with no delay to count the requests a command makes. It runs in a child process, so it keeps
// answering while the caller waits for a command synchronously; the requests go to a log file, one
// JSON line each, which `requests()` reads.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { listeningPort } from './child-port.ts';

export interface ProxiedRequest {
  readonly method: string;
  /** The path and query, as the client sent them. */
  readonly url: string;
  /** When it arrived (ms since the epoch). */
  readonly at: number;
}

export interface LatencyProxy {
  /** http://127.0.0.1:<port> */
  readonly endpoint: string;
  /** Every request since the start or the last reset, in the order they arrived. */
  requests(): ProxiedRequest[];
  reset(): void;
  close(): Promise<void>;
}

// The child exits when its stdin closes, so a caller that dies never leaves a proxy behind.
// s3rver stores a body sent with the streaming signature (aws-chunked, what restic's minio-go sends over
// plain HTTP) with its framing; the proxy takes the framing off, as S3 does, before passing it on.
const CHILD_SCRIPT = `
const fs = require('node:fs');
const http = require('node:http');
const [target, delay, log] = [new URL(process.argv[1]), Number(process.argv[2]), process.argv[3]];
const agent = new http.Agent({ keepAlive: true });
function unframe(body) {
  const parts = [];
  let pos = 0;
  for (;;) {
    const eol = body.indexOf('\\r\\n', pos);
    if (eol < 0) throw new Error('aws-chunked body without a final chunk');
    const size = parseInt(body.toString('latin1', pos, eol).split(';')[0], 16);
    if (!(size >= 0)) throw new Error('aws-chunked body with a bad chunk size');
    pos = eol + 2;
    if (size === 0) return Buffer.concat(parts);
    parts.push(body.subarray(pos, pos + size));
    pos += size + 2;
  }
}
function forward(req, res, headers, body) {
  const out = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers, agent }, (answer) => {
    res.writeHead(answer.statusCode || 502, answer.headers);
    answer.pipe(res);
  });
  out.on('error', () => res.destroy());
  if (body) out.end(body);
  else req.pipe(out);
}
const server = http.createServer((req, res) => {
  fs.appendFileSync(log, JSON.stringify({ method: req.method, url: req.url, at: Date.now() }) + '\\n');
  if (!String(req.headers['x-amz-content-sha256'] || '').startsWith('STREAMING-')) {
    // The body waits in the paused request stream until the delay is over.
    setTimeout(() => forward(req, res, req.headers), delay);
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    let body;
    try {
      body = unframe(Buffer.concat(chunks));
    } catch (err) {
      res.writeHead(400).end(String(err.message));
      return;
    }
    const headers = { ...req.headers, 'content-length': String(body.length), 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' };
    delete headers['x-amz-decoded-content-length'];
    delete headers['transfer-encoding'];
    if (headers['content-encoding'] === 'aws-chunked') delete headers['content-encoding'];
    setTimeout(() => forward(req, res, headers, body), delay);
  });
});
server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => console.log('listening on ' + server.address().port));
process.stdin.on('end', () => process.exit(0)).resume();
`;

export async function startLatencyProxy(target: string, delayMs: number): Promise<LatencyProxy> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-latency-proxy-'));
  const log = path.join(dir, 'requests.jsonl');
  fs.writeFileSync(log, '');
  const child = spawn(process.execPath, ['-e', CHILD_SCRIPT, target, String(delayMs), log], { stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await listeningPort(child, 'the latency proxy');
  let closed: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests: () =>
      fs
        .readFileSync(log, 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as ProxiedRequest),
    reset: () => fs.truncateSync(log, 0),
    close() {
      closed ??= (async () => {
        child.kill('SIGKILL');
        await exited;
        fs.rmSync(dir, { recursive: true, force: true });
      })();
      return closed;
    },
  };
}
