// Users and sessions: the first account becomes the administrator; later ones come by invitation or,
// when the administrator allows it, by open sign-up. Sign-in sets an HTTP-only SameSite cookie and
// returns the CSRF token that cookie-authenticated writes must send back in a header.
import crypto from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ServerContext } from '../context.ts';
import { SMTP_BODY_SCHEMA, smtpView, writeSmtp, type SmtpInput } from '../notify/mail.ts';
import type { Kysely } from 'kysely';
import type { Database, User } from '../db/schema.ts';
import { HttpError } from '../http-error.ts';
import { clearSessionCookie, requireAdmin, requireSession, setSessionCookie } from './guard.ts';
import { hashPassword, passwordProblem, timingDummyHash, verifyPassword } from './passwords.ts';
import { assertNotLocked, clearFailures, recordFailure } from './rate-limit.ts';
import { newToken, tokenHash } from './tokens.ts';

const INVITATION_TTL_MS = 7 * 24 * 3600_000;
const EMAIL = /^[^\s@]+@[^\s@]+$/;

export function publicUser(user: User): { id: string; email: string; role: string; createdAt: number } {
  return { id: user.id, email: user.email, role: user.role, createdAt: user.created_at };
}

const credentials = {
  type: 'object',
  required: ['email', 'password'],
  additionalProperties: false,
  properties: { email: { type: 'string', maxLength: 320 }, password: { type: 'string', maxLength: 1024 }, invitation: { type: 'string', maxLength: 200 } },
} as const;

/** Whether anyone may sign up or only invited people. `db` may be a transaction: on SQLite there is one connection. */
async function signupMode(db: Kysely<Database>): Promise<'open' | 'invite'> {
  const row = await db.selectFrom('settings').select('value').where('key', '=', 'signup').executeTakeFirst();
  return row?.value === 'open' ? 'open' : 'invite';
}

async function startSession(ctx: ServerContext, request: FastifyRequest, reply: FastifyReply, user: User) {
  const token = newToken();
  const csrfToken = newToken();
  const now = ctx.now();
  const ttl = ctx.settings.sessionDays * 24 * 3600_000;
  await ctx.db.insertInto('sessions').values({ id: tokenHash(token), user_id: user.id, csrf_token: csrfToken, created_at: now, expires_at: now + ttl, last_seen_at: now }).execute();
  setSessionCookie(reply, request, token, ttl / 1000);
  return { user: publicUser(user), csrfToken };
}

export async function authRoutes(app: FastifyInstance, { ctx }: { ctx: ServerContext }): Promise<void> {
  app.get('/api/auth/state', { schema: { summary: 'whether the server has users yet, and how new users may join' } }, async () => {
    const any = await ctx.db.selectFrom('users').select('id').limit(1).executeTakeFirst();
    return { hasUsers: any !== undefined, signup: await signupMode(ctx.db) };
  });

  app.post<{ Body: { email: string; password: string; invitation?: string } }>(
    '/api/auth/signup',
    { schema: { summary: 'create an account (the first one becomes administrator)', body: credentials } },
    async (request, reply) => {
      const email = request.body.email.trim().toLowerCase();
      if (!EMAIL.test(email)) throw new HttpError(400, `"${request.body.email}" is not an email address`);
      const problem = passwordProblem(request.body.password);
      if (problem) throw new HttpError(400, problem);
      const hash = await hashPassword(request.body.password);
      const now = ctx.now();
      const user = await ctx.db.transaction().execute(async (trx) => {
        const first = (await trx.selectFrom('users').select('id').limit(1).executeTakeFirst()) === undefined;
        let invitationId: string | undefined;
        if (!first) {
          if (request.body.invitation) {
            const inv = await trx.selectFrom('invitations').selectAll().where('token_hash', '=', tokenHash(request.body.invitation)).executeTakeFirst();
            if (!inv || inv.used_at !== null || inv.expires_at <= now) throw new HttpError(403, 'this invitation is unknown, used or expired; ask the administrator for a new one');
            if (inv.email && inv.email !== email) throw new HttpError(403, `this invitation is for ${inv.email}`);
            invitationId = inv.id;
          } else if ((await signupMode(trx)) !== 'open') {
            throw new HttpError(403, 'sign-up is by invitation only; ask the administrator for an invitation');
          }
        }
        if (await trx.selectFrom('users').select('id').where('email', '=', email).executeTakeFirst()) throw new HttpError(409, `an account for ${email} exists; sign in instead`);
        const row: User = { id: crypto.randomUUID(), email, password_hash: hash, role: first ? 'admin' : 'user', created_at: now, password_changed_at: now };
        await trx.insertInto('users').values(row).execute();
        if (invitationId) await trx.updateTable('invitations').set({ used_at: now, used_by: row.id }).where('id', '=', invitationId).execute();
        return row;
      });
      ctx.log.info({ user: user.id, role: user.role }, 'account created');
      reply.code(201);
      return startSession(ctx, request, reply, user);
    },
  );

  app.post<{ Body: { email: string; password: string } }>(
    '/api/auth/login',
    { schema: { summary: 'sign in: sets the session cookie, returns the CSRF token', body: credentials } },
    async (request, reply) => {
      const email = request.body.email.trim().toLowerCase();
      const keys = [`email:${email}`, `ip:${request.ip}`];
      await assertNotLocked(ctx, keys);
      const user = await ctx.db.selectFrom('users').selectAll().where('email', '=', email).executeTakeFirst();
      // The same work whether or not the account exists, so timing does not tell which emails have one.
      const ok = await verifyPassword(request.body.password, user?.password_hash ?? (await timingDummyHash()));
      if (!user || !ok) {
        await recordFailure(ctx, keys);
        ctx.log.warn({ ip: request.ip }, 'failed sign-in');
        throw new HttpError(401, 'wrong email or password');
      }
      await clearFailures(ctx, keys[0]!);
      return startSession(ctx, request, reply, user);
    },
  );

  app.post('/api/auth/logout', { schema: { summary: 'sign out (ends this session)' } }, async (request, reply) => {
    const auth = requireSession(request);
    await ctx.db.deleteFrom('sessions').where('id', '=', auth.sessionId).execute();
    clearSessionCookie(reply, request);
    return { ok: true };
  });

  app.get('/api/auth/session', { schema: { summary: 'the signed-in user and the CSRF token' } }, async (request) => {
    const auth = requireSession(request);
    return { user: publicUser(auth.user), csrfToken: auth.csrfToken };
  });

  app.post<{ Body: { currentPassword: string; newPassword: string } }>(
    '/api/auth/password',
    {
      schema: {
        summary: 'change the password; every other session of the user ends',
        body: { type: 'object', required: ['currentPassword', 'newPassword'], additionalProperties: false, properties: { currentPassword: { type: 'string', maxLength: 1024 }, newPassword: { type: 'string', maxLength: 1024 } } },
      },
    },
    async (request) => {
      const auth = requireSession(request);
      if (!(await verifyPassword(request.body.currentPassword, auth.user.password_hash))) throw new HttpError(403, 'the current password is wrong');
      const problem = passwordProblem(request.body.newPassword);
      if (problem) throw new HttpError(400, problem);
      const hash = await hashPassword(request.body.newPassword);
      await ctx.db.transaction().execute(async (trx) => {
        await trx.updateTable('users').set({ password_hash: hash, password_changed_at: ctx.now() }).where('id', '=', auth.user.id).execute();
        await trx.deleteFrom('sessions').where('user_id', '=', auth.user.id).where('id', '!=', auth.sessionId).execute();
      });
      return { ok: true };
    },
  );

  app.get('/api/admin/users', { schema: { summary: 'every account (administrator)' } }, async (request) => {
    requireAdmin(request);
    return (await ctx.db.selectFrom('users').selectAll().orderBy('created_at').execute()).map(publicUser);
  });

  app.post<{ Body: { email?: string } }>(
    '/api/admin/invitations',
    { schema: { summary: 'invite someone: the token is shown once (administrator)', body: { type: 'object', additionalProperties: false, properties: { email: { type: 'string', maxLength: 320 } } } } },
    async (request, reply) => {
      const auth = requireAdmin(request);
      const email = request.body?.email?.trim().toLowerCase() || null;
      if (email && !EMAIL.test(email)) throw new HttpError(400, `"${request.body.email}" is not an email address`);
      const token = newToken('inv_');
      const now = ctx.now();
      const id = crypto.randomUUID();
      await ctx.db.insertInto('invitations').values({ id, token_hash: tokenHash(token), email, created_by: auth.user.id, created_at: now, expires_at: now + INVITATION_TTL_MS, used_at: null, used_by: null }).execute();
      reply.code(201);
      return { id, token, email, expiresAt: now + INVITATION_TTL_MS };
    },
  );

  app.get('/api/admin/invitations', { schema: { summary: 'invitations and whether they were used (administrator)' } }, async (request) => {
    requireAdmin(request);
    const rows = await ctx.db.selectFrom('invitations').selectAll().orderBy('created_at', 'desc').execute();
    return rows.map((r) => ({ id: r.id, email: r.email, createdAt: r.created_at, expiresAt: r.expires_at, usedAt: r.used_at }));
  });

  app.get('/api/admin/settings', { schema: { summary: 'server-wide settings: sign-up, the SMTP server for alert and report emails (administrator)' } }, async (request) => {
    requireAdmin(request);
    return { signup: await signupMode(ctx.db), smtp: await smtpView(ctx) };
  });

  app.put<{ Body: { signup?: 'open' | 'invite'; smtp?: SmtpInput | null } }>(
    '/api/admin/settings',
    {
      schema: {
        summary: 'change server-wide settings; smtp null removes the SMTP server, a password left out keeps the stored one (administrator)',
        body: { type: 'object', additionalProperties: false, properties: { signup: { enum: ['open', 'invite'] }, smtp: SMTP_BODY_SCHEMA } },
      },
    },
    async (request) => {
      requireAdmin(request);
      const value = request.body.signup;
      if (value) await ctx.db.insertInto('settings').values({ key: 'signup', value }).onConflict((oc) => oc.column('key').doUpdateSet({ value })).execute();
      if (request.body.smtp !== undefined) await writeSmtp(ctx, request.body.smtp);
      return { signup: await signupMode(ctx.db), smtp: await smtpView(ctx) };
    },
  );
}
