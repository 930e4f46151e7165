// Who is calling: a person with a session cookie, or an agent with an API key. Every route states which
// it accepts; resources are then looked up with the caller's user id, so another user's resource is
// simply not found.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ServerContext } from '../context.ts';
import type { User } from '../db/schema.ts';
import { HttpError } from '../http-error.ts';
import { sameSecret, tokenHash } from './tokens.ts';

export const SESSION_COOKIE = 'coffer_session';
export const CSRF_HEADER = 'x-csrf-token';

export interface SessionAuth {
  readonly via: 'session';
  readonly user: User;
  readonly sessionId: string;
  readonly csrfToken: string;
}

export interface KeyAuth {
  readonly via: 'key';
  readonly user: User;
  readonly keyId: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    auth?: SessionAuth | KeyAuth;
  }
}

export function parseCookies(header: string | undefined): Map<string, string> {
  const cookies = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    try {
      cookies.set(name, decodeURIComponent(part.slice(eq + 1).trim()));
    } catch {
      // A cookie that is not valid percent-encoding is not ours.
    }
  }
  return cookies;
}

function bearer(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  const m = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
  return m?.[1];
}

/** Looks the caller up once per request; routes then ask for what they need. */
export function registerAuth(app: FastifyInstance, ctx: ServerContext): void {
  app.decorateRequest('auth', undefined);
  app.addHook('onRequest', async (request) => {
    const key = bearer(request);
    if (key !== undefined) {
      request.auth = await authenticateKey(ctx, key);
      return;
    }
    const token = parseCookies(request.headers.cookie).get(SESSION_COOKIE);
    if (token) request.auth = await authenticateSession(ctx, token);
  });
}

async function authenticateSession(ctx: ServerContext, token: string): Promise<SessionAuth | undefined> {
  const now = ctx.now();
  const row = await ctx.db
    .selectFrom('sessions')
    .innerJoin('users', 'users.id', 'sessions.user_id')
    .selectAll('users')
    .select(['sessions.id as session_id', 'sessions.csrf_token', 'sessions.expires_at', 'sessions.last_seen_at'])
    .where('sessions.id', '=', tokenHash(token))
    .executeTakeFirst();
  if (!row || row.expires_at <= now) return undefined;
  // Touch at most once a minute: a busy dashboard must not write on every request.
  if (now - row.last_seen_at > 60_000) await ctx.db.updateTable('sessions').set({ last_seen_at: now }).where('id', '=', row.session_id).execute();
  const { session_id, csrf_token, expires_at: _e, last_seen_at: _l, ...user } = row;
  return { via: 'session', user, sessionId: session_id, csrfToken: csrf_token };
}

/** A key that is unknown or revoked authenticates nobody; last_used_at is kept to the minute. */
export async function authenticateKey(ctx: ServerContext, key: string): Promise<KeyAuth | undefined> {
  const row = await ctx.db
    .selectFrom('api_keys')
    .innerJoin('users', 'users.id', 'api_keys.user_id')
    .selectAll('users')
    .select(['api_keys.id as key_id', 'api_keys.revoked_at', 'api_keys.last_used_at'])
    .where('api_keys.key_hash', '=', tokenHash(key))
    .executeTakeFirst();
  if (!row || row.revoked_at !== null) return undefined;
  const now = ctx.now();
  if (row.last_used_at === null || now - row.last_used_at > 60_000) await ctx.db.updateTable('api_keys').set({ last_used_at: now }).where('id', '=', row.key_id).execute();
  const { key_id, revoked_at: _r, last_used_at: _u, ...user } = row;
  return { via: 'key', user, keyId: key_id };
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** A signed-in person. Writes must carry the session's CSRF token in a header a cross-site form cannot set. */
export function requireSession(request: FastifyRequest): SessionAuth {
  const auth = request.auth;
  if (auth?.via !== 'session') throw new HttpError(401, 'sign in first');
  if (!SAFE_METHODS.has(request.method)) {
    const sent = request.headers[CSRF_HEADER];
    if (typeof sent !== 'string' || !sameSecret(sent, auth.csrfToken)) throw new HttpError(403, `missing or wrong ${CSRF_HEADER} header (get it from GET /api/auth/session)`);
  }
  return auth;
}

export function requireAdmin(request: FastifyRequest): SessionAuth {
  const auth = requireSession(request);
  if (auth.user.role !== 'admin') throw new HttpError(403, 'only an administrator may do this');
  return auth;
}

/** An agent's API key (Authorization: Bearer cof_…). */
export function requireKey(request: FastifyRequest): KeyAuth {
  const auth = request.auth;
  if (auth?.via === 'key') return auth;
  if (bearer(request) !== undefined) throw new HttpError(401, 'the API key is unknown or revoked');
  throw new HttpError(401, 'this route takes an agent API key (Authorization: Bearer …)');
}

export function isSecureRequest(request: FastifyRequest): boolean {
  return request.protocol === 'https';
}

export function setSessionCookie(reply: FastifyReply, request: FastifyRequest, token: string, maxAgeSeconds: number): void {
  const secure = isSecureRequest(request) ? '; Secure' : '';
  reply.header('set-cookie', `${SESSION_COOKIE}=${token}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${Math.floor(maxAgeSeconds)}${secure}`);
}

export function clearSessionCookie(reply: FastifyReply, request: FastifyRequest): void {
  const secure = isSecureRequest(request) ? '; Secure' : '';
  reply.header('set-cookie', `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0${secure}`);
}
