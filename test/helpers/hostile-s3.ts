// A hostile S3 endpoint: it speaks enough of the S3 API for the AWS SDK (ListObjectsV2, GET with
// Range, HEAD, PUT, DELETE) and lies the way a compromised storage host can. It lists keys that are
// no repository object names ('keys/../../etc/cron.d/x'), claims absurd sizes, answers with bodies
// far bigger than asked for, and ignores Range headers. It runs in the test process: drive coffer
// against it with cofferAsync (a synchronous child would block its event loop).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';

/** A body of `size` bytes of `fill`, produced as it is sent and never held in memory. */
export interface GeneratedBody {
  readonly size: number;
  readonly fill?: number;
}

export type HostileObject = Buffer | GeneratedBody;

export interface HostileS3Options {
  /** Objects by key (below the bucket); listed, served, and added to by PUT. */
  readonly objects?: Map<string, HostileObject>;
  /** Keys the listing shows with these sizes whatever the objects hold. */
  readonly listedSizes?: ReadonlyMap<string, number>;
  /** Answer range requests with the whole object, as some servers do. */
  readonly ignoreRange?: boolean;
  /** Every listing page says there is more, with the same continuation token. */
  readonly endlessListing?: boolean;
}

export interface HostileS3 {
  readonly endpoint: string;
  readonly bucket: string;
  readonly objects: Map<string, HostileObject>;
  /** The environment coffer needs to talk to it (any credentials are accepted). */
  readonly env: Record<string, string>;
  /** Every request as 'METHOD /path?query'. */
  readonly requests: string[];
  /** Body bytes handed to the network so far (what a client that reads too much makes it send). */
  bytesServed(): number;
  /** The s3: location of `prefix` in the bucket. */
  location(prefix?: string): string;
  stop(): Promise<void>;
}

function xmlEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function sizeOf(object: HostileObject): number {
  return Buffer.isBuffer(object) ? object.length : object.size;
}

/** Bytes [start, end) of an object as a stream; `sent` is told each block's size as it goes out. */
function bodyOf(object: HostileObject, start: number, end: number, sent: (bytes: number) => void): Readable {
  if (Buffer.isBuffer(object)) {
    sent(end - start);
    return Readable.from([object.subarray(start, end)]);
  }
  const block = Buffer.alloc(1024 * 1024, object.fill ?? 0);
  let left = end - start;
  return new Readable({
    read() {
      if (left <= 0) return void this.push(null);
      const n = Math.min(left, block.length);
      left -= n;
      sent(n);
      this.push(block.subarray(0, n));
    },
  });
}

export async function startHostileS3(options: HostileS3Options = {}, bucket = 'evil'): Promise<HostileS3> {
  const objects = options.objects ?? new Map<string, HostileObject>();
  const requests: string[] = [];
  let served = 0;
  const sent = (bytes: number): void => {
    served += bytes;
  };
  const server = http.createServer((req, res) => {
    // Not new URL(req.url).pathname, which would resolve '..' segments: keys are taken as sent.
    const [rawPath = '', query = ''] = req.url!.split('?');
    const url = new URL(`http://s3/?${query}`);
    requests.push(`${req.method} ${req.url}`);
    const [, bucketName = '', ...rest] = rawPath.split('/');
    const key = decodeURIComponent(rest.join('/'));
    if (bucketName !== bucket) return void res.writeHead(404).end();
    const parts: Buffer[] = [];
    req.on('data', (chunk: Buffer) => parts.push(chunk));
    req.on('end', () => {
      if (req.method === 'GET' && key === '' && url.searchParams.get('list-type') === '2') return list(res, url.searchParams.get('prefix') ?? '');
      const object = objects.get(key);
      switch (req.method) {
        case 'PUT':
          objects.set(key, Buffer.concat(parts));
          return void res.writeHead(200, { etag: '"x"' }).end();
        case 'DELETE':
          objects.delete(key);
          return void res.writeHead(204).end();
        case 'HEAD':
          if (!object) return void res.writeHead(404).end();
          return void res.writeHead(200, { 'content-length': String(sizeOf(object)) }).end();
        case 'GET': {
          if (!object) return notFound(res);
          const size = sizeOf(object);
          const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
          if (range && !options.ignoreRange) {
            const start = Number(range[1]);
            const end = Math.min(size, Number(range[2]) + 1);
            res.writeHead(206, { 'content-length': String(end - start), 'content-range': `bytes ${start}-${end - 1}/${size}` });
            return void bodyOf(object, start, end, sent).pipe(res);
          }
          res.writeHead(200, { 'content-length': String(size) });
          return void bodyOf(object, 0, size, sent).pipe(res);
        }
        default:
          res.writeHead(405).end();
      }
    });
  });

  const list = (res: http.ServerResponse, prefix: string): void => {
    const keys = [...new Set([...objects.keys(), ...(options.listedSizes?.keys() ?? [])])].filter((k) => k.startsWith(prefix)).sort();
    const contents = keys
      .map((k) => `<Contents><Key>${xmlEscape(k)}</Key><Size>${options.listedSizes?.get(k) ?? sizeOf(objects.get(k)!)}</Size></Contents>`)
      .join('');
    res.writeHead(200, { 'content-type': 'application/xml' });
    const more = options.endlessListing ? '<IsTruncated>true</IsTruncated><NextContinuationToken>again</NextContinuationToken>' : '<IsTruncated>false</IsTruncated>';
    res.end(
      `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>${bucket}</Name>` +
        `<Prefix>${xmlEscape(prefix)}</Prefix><KeyCount>${keys.length}</KeyCount><MaxKeys>1000</MaxKeys>${more}${contents}</ListBucketResult>`,
    );
  };

  const notFound = (res: http.ServerResponse): void => {
    res.writeHead(404, { 'content-type': 'application/xml' });
    res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>no such key</Message></Error>');
  };

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    endpoint,
    bucket,
    objects,
    env: { AWS_ACCESS_KEY_ID: 'HOSTILE', AWS_SECRET_ACCESS_KEY: 'HOSTILE' },
    requests,
    bytesServed: () => served,
    location: (prefix = '') => `s3:${endpoint}/${bucket}${prefix ? `/${prefix}` : ''}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Every file of a local repository as objects under `prefix`, to serve a real repository from the hostile endpoint. */
export function objectsOf(files: Iterable<[string, Buffer]>, prefix = ''): Map<string, HostileObject> {
  return new Map([...files].map(([name, bytes]) => [`${prefix}${name}`, bytes]));
}
