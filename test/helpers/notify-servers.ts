// Where notifications land in the tests: a real SMTP server (smtp-server) and an HTTP server for
// webhooks and pings, both on loopback in the test process.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

export interface Mail {
  readonly from: string;
  readonly to: string[];
  readonly subject: string;
  readonly body: string;
  readonly raw: string;
}

/** The body of a message as text: quoted-printable undone (soft line breaks, =XX escapes). */
function decode(raw: string): { subject: string; body: string } {
  const [head, ...rest] = raw.split(/\r?\n\r?\n/);
  const headers = head!.replace(/\r?\n[ \t]+/g, ' ');
  const subject = /^Subject: (.*)$/im.exec(headers)?.[1] ?? '';
  let body = rest.join('\n\n');
  if (/^Content-Transfer-Encoding: quoted-printable/im.test(headers)) {
    body = Buffer.from(body.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))), 'latin1').toString('utf8');
  }
  return { subject, body: body.replace(/\r\n/g, '\n') };
}

export interface SmtpServer {
  readonly port: number;
  readonly mails: Mail[];
  /** Login attempts refused. */
  readonly refused: string[];
  waitFor(match: (m: Mail) => boolean, timeoutMs?: number): Promise<Mail>;
  close(): Promise<void>;
}

export async function startSmtp(user: string, password: string): Promise<SmtpServer> {
  const mails: Mail[] = [];
  const refused: string[] = [];
  const server = new SMTPServer({
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true,
    authOptional: false,
    logger: false,
    onAuth(auth, _session, callback) {
      if (auth.username === user && auth.password === password) return callback(null, { user });
      refused.push(auth.username ?? '');
      callback(new Error('Invalid username or password'));
    },
    onData(stream, session, callback) {
      const parts: Buffer[] = [];
      stream.on('data', (d: Buffer) => parts.push(d));
      stream.on('end', () => {
        const raw = Buffer.concat(parts).toString('utf8');
        const envelope = session.envelope;
        mails.push({ from: envelope.mailFrom ? envelope.mailFrom.address : '', to: envelope.rcptTo.map((r) => r.address), ...decode(raw), raw });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as AddressInfo).port;
  return {
    port,
    mails,
    refused,
    async waitFor(match, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = mails.find(match);
        if (found) return found;
        if (Date.now() > deadline) throw new Error(`no such mail within ${timeoutMs} ms; got: ${mails.map((m) => m.subject).join(' | ')}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export interface HttpHit {
  readonly method: string;
  readonly path: string;
  readonly body: string;
  readonly status: number;
}

export interface HookServer {
  readonly url: string;
  readonly hits: HttpHit[];
  /** Answers the next `n` requests to `path` with `status`. */
  failNext(path: string, n: number, status: number): void;
  waitFor(match: (h: HttpHit) => boolean, timeoutMs?: number): Promise<HttpHit>;
  close(): Promise<void>;
}

export async function startHookServer(): Promise<HookServer> {
  const hits: HttpHit[] = [];
  const failures = new Map<string, { n: number; status: number }>();
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      const path = req.url ?? '/';
      const failure = failures.get(path);
      const status = failure && failure.n > 0 ? failure.status : 200;
      if (failure) failure.n--;
      hits.push({ method: req.method ?? 'GET', path, body: Buffer.concat(parts).toString('utf8'), status });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits,
    failNext: (path, n, status) => failures.set(path, { n, status }),
    async waitFor(match, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = hits.find(match);
        if (found) return found;
        if (Date.now() > deadline) throw new Error(`no such request within ${timeoutMs} ms; got: ${hits.map((h) => `${h.method} ${h.path} ${h.status}`).join(' | ')}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
