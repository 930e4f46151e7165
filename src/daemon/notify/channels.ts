// Where notifications go: email over SMTP (nodemailer), webhooks (a JSON POST), and healthchecks-style
// ping URLs (URL/start when a run starts, URL on success, URL/fail on failure). Each send retries what
// may go away by itself (a connection refused, a 5xx, a 429) a few times with growing delays, and fails
// at once on what will not (a refused login, a 4xx). Errors say what to check, never a password.
//
// Interface:
//   sendEmail(settings, to, message, options?) · postWebhook(url, body, options?) · ping(url, event, body?, options?)
//   NotifyError: one line for the daemon's log
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import nodemailer from 'nodemailer';
import type { EmailConfig } from '../../config/automation.ts';
import { redactString } from '../../jobs/redact.ts';
import { childEnvironment } from '../child-env.ts';
import type { Message } from './messages.ts';

export class NotifyError extends Error {
  override name = 'NotifyError';
}

export interface SendOptions {
  /** Waits before the 2nd, 3rd… attempt. Default 2 s, 10 s, 30 s. */
  readonly retryDelaysMs?: readonly number[];
  readonly timeoutMs?: number;
}

export const DEFAULT_RETRY_DELAYS_MS = [2_000, 10_000, 30_000];

/** An error worth another attempt. */
class Transient extends Error {}

async function withRetries(what: string, options: SendOptions, attempt: () => Promise<void>): Promise<void> {
  const delays = options.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS;
  for (let i = 0; ; i++) {
    try {
      await attempt();
      return;
    } catch (err) {
      const message = redactString((err as Error).message);
      if (!(err instanceof Transient)) throw new NotifyError(`${what}: ${message}`);
      if (i >= delays.length) throw new NotifyError(`${what}: ${message} (gave up after ${i + 1} attempts)`);
      await new Promise((resolve) => setTimeout(resolve, delays[i]));
    }
  }
}

function smtpPassword(smtp: EmailConfig['smtp']): string | undefined {
  if (smtp.passwordFile) {
    try {
      return fs.readFileSync(smtp.passwordFile, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new NotifyError(`cannot read the SMTP password file ${smtp.passwordFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  if (smtp.passwordCommand) {
    const r = spawnSync('/bin/sh', ['-c', smtp.passwordCommand], { encoding: 'utf8', env: childEnvironment(), timeout: 30_000 });
    if (r.status !== 0) throw new NotifyError(`the SMTP passwordCommand failed (exit ${r.status ?? 'signal'}); run it by hand to see why`);
    return r.stdout.replace(/\r?\n$/, '');
  }
  return process.env.COFFER_SMTP_PASSWORD || undefined;
}

/** `password`: the SMTP password itself (the fleet server keeps it sealed in its database), instead of the config's passwordFile/passwordCommand. */
export async function sendEmail(settings: EmailConfig, to: readonly string[], message: Message, options: SendOptions & { readonly password?: string } = {}): Promise<void> {
  const smtp = settings.smtp;
  const server = `${smtp.host}:${smtp.port ?? (smtp.secure ? 465 : 587)}`;
  const password = options.password ?? smtpPassword(smtp);
  const timeout = options.timeoutMs ?? 30_000;
  const transport = nodemailer.createTransport({
    host: smtp.host,
    port: smtp.port ?? (smtp.secure ? 465 : 587),
    secure: smtp.secure ?? false,
    ...(smtp.user ? { auth: { user: smtp.user, pass: password ?? '' } } : {}),
    connectionTimeout: timeout,
    greetingTimeout: timeout,
    socketTimeout: timeout,
  });
  try {
    await withRetries(`email to ${to.join(', ')} through ${server}`, options, async () => {
      try {
        await transport.sendMail({ from: settings.from, to: [...to], subject: message.subject, text: `${message.text}\n` });
      } catch (err) {
        const e = err as NodeJS.ErrnoException & { responseCode?: number; response?: string };
        if (e.code === 'EAUTH') throw new Error(`the SMTP server refused the login (${(e.response ?? e.message).trim()}); check email.smtp.user and its password`);
        if (e.code === 'ECONNECTION' || e.code === 'ETIMEDOUT' || e.code === 'ESOCKET' || e.code === 'EDNS' || e.code === 'ECONNREFUSED') {
          throw new Transient(`cannot reach the SMTP server (${e.message.replace(/^connect /, '')}); check email.smtp.host and port`);
        }
        if (e.responseCode !== undefined && e.responseCode >= 400 && e.responseCode < 500) throw new Transient(`the SMTP server said: ${(e.response ?? e.message).trim()}`);
        throw new Error(`the SMTP server said: ${(e.response ?? e.message).trim()}`);
      }
    });
  } finally {
    transport.close();
  }
}

async function request(url: string, init: RequestInit, timeoutMs: number): Promise<void> {
  let response: Response;
  try {
    response = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs), redirect: 'follow' });
  } catch (err) {
    const cause = (err as Error & { cause?: NodeJS.ErrnoException }).cause;
    throw new Transient(cause?.code ? `${cause.code} (${cause.message})` : (err as Error).message);
  }
  await response.body?.cancel();
  if (response.ok) return;
  const what = `the server answered ${response.status} ${response.statusText}`;
  if (response.status >= 500 || response.status === 429 || response.status === 408) throw new Transient(what);
  throw new Error(`${what}; check the URL`);
}

/** A JSON POST. */
export function postWebhook(url: string, body: unknown, options: SendOptions = {}): Promise<void> {
  return withRetries(`webhook ${redactString(url)}`, options, () =>
    request(url, { method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': 'coffer' }, body: JSON.stringify(body) }, options.timeoutMs ?? 15_000),
  );
}

export type PingEvent = 'start' | 'success' | 'fail';

/** Healthchecks.io style: URL/start, URL, URL/fail; a body (the reason of a failure) goes along as text. */
export function ping(url: string, event: PingEvent, body = '', options: SendOptions = {}): Promise<void> {
  const target = event === 'success' ? url : `${url.replace(/\/+$/, '')}/${event}`;
  return withRetries(`ping ${redactString(target)}`, options, () =>
    request(target, { method: 'POST', headers: { 'content-type': 'text/plain; charset=utf-8', 'user-agent': 'coffer' }, body }, options.timeoutMs ?? 15_000),
  );
}
