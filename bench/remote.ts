// The remote-latency scenario's server: s3rver (as the tests start it), reached by both tools through a
// proxy that holds every request for a fixed delay, the round trip of a network; the proxy also writes
// down the requests, so the report can say how many each command made.
import { startLatencyProxy, type LatencyProxy } from '../test/helpers/latency-proxy.ts';
import { startS3Server, type S3Server } from '../test/helpers/s3-server.ts';

export interface RemoteServer {
  /** The proxy's http://127.0.0.1:port: where the tools send their requests. */
  readonly endpoint: string;
  readonly bucket: string;
  /** AWS_* variables for both tools (s3rver's only key pair). */
  readonly env: Readonly<Record<string, string>>;
  /** Requests that went through the proxy since the last call. */
  takeRequestCount(): number;
  stop(): Promise<void>;
}

export async function startRemoteServer(delayMs: number): Promise<RemoteServer> {
  const s3: S3Server = await startS3Server('bench');
  let proxy: LatencyProxy;
  try {
    proxy = await startLatencyProxy(s3.endpoint, delayMs);
  } catch (e) {
    await s3.stop();
    throw e;
  }
  return {
    endpoint: proxy.endpoint,
    bucket: s3.bucket,
    env: { AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey, AWS_EC2_METADATA_DISABLED: 'true' },
    takeRequestCount() {
      const count = proxy.requests().length;
      proxy.reset();
      return count;
    },
    async stop() {
      await proxy.close();
      await s3.stop();
    },
  };
}
