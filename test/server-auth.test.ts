// Users, sessions, CSRF, login rate limiting and API keys, on SQLite and on a real PostgreSQL.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startPostgres, type PostgresServer } from './helpers/postgres.ts';
import { Client, startTestServer, type TestServer } from './helpers/server.ts';

let postgres: PostgresServer;
before(async () => {
  postgres = await startPostgres();
});
after(() => postgres.stop());

for (const backend of ['sqlite', 'postgres'] as const) {
  describe(`auth on ${backend}`, () => {
    let server: TestServer;
    before(async () => {
      server = await startTestServer(backend === 'postgres' ? { databaseUrl: await postgres.createDatabase() } : {});
    });
    after(() => server.close());

    test('health, readiness and the OpenAPI description answer without signing in', async () => {
      const health = await server.app.inject({ url: '/healthz' });
      assert.equal(health.statusCode, 200);
      const ready = await server.app.inject({ url: '/readyz' });
      assert.equal(ready.json().database, backend);
      const spec = (await server.app.inject({ url: '/api/openapi.json' })).json();
      assert.equal(spec.openapi, '3.1.0');
      assert.ok(spec.paths['/api/auth/login'].post.requestBody);
      assert.ok(spec.paths['/api/keys/{id}'].delete);
    });

    test('the first account is the administrator; later ones need an invitation until sign-up is opened', async () => {
      const state = await server.app.inject({ url: '/api/auth/state' });
      assert.deepEqual(state.json(), { hasUsers: false, signup: 'invite' });
      const admin = await new Client(server.app).signup('Admin@Example.com');
      const session = await admin.json<{ user: { email: string; role: string } }>('GET', '/api/auth/session');
      assert.deepEqual([session.user.email, session.user.role], ['admin@example.com', 'admin']);

      const refused = await new Client(server.app).request('POST', '/api/auth/signup', { email: 'bob@example.com', password: 'correct horse battery' });
      assert.equal(refused.statusCode, 403);
      assert.match(refused.json().error, /invitation/);

      const inv = await admin.json<{ token: string }>('POST', '/api/admin/invitations', { email: 'bob@example.com' }, 201);
      const wrongEmail = await new Client(server.app).request('POST', '/api/auth/signup', { email: 'eve@example.com', password: 'correct horse battery', invitation: inv.token });
      assert.equal(wrongEmail.statusCode, 403);
      const bob = await new Client(server.app).signup('bob@example.com', 'correct horse battery', inv.token);
      assert.equal((await bob.json<{ user: { role: string } }>('GET', '/api/auth/session')).user.role, 'user');
      const reused = await new Client(server.app).request('POST', '/api/auth/signup', { email: 'bob2@example.com', password: 'correct horse battery', invitation: inv.token });
      assert.equal(reused.statusCode, 403);

      assert.equal((await bob.request('PUT', '/api/admin/settings', { signup: 'open' })).statusCode, 403);
      await admin.json('PUT', '/api/admin/settings', { signup: 'open' });
      await new Client(server.app).signup('carol@example.com');
      const dup = await new Client(server.app).request('POST', '/api/auth/signup', { email: 'carol@example.com', password: 'correct horse battery' });
      assert.equal(dup.statusCode, 409);
      const short = await new Client(server.app).request('POST', '/api/auth/signup', { email: 'dan@example.com', password: 'short' });
      assert.equal(short.statusCode, 400);
      assert.match(short.json().error, /at least 10 characters/);
      await admin.json('PUT', '/api/admin/settings', { signup: 'invite' });
    });

    test('the session cookie is HTTP-only and SameSite; writes without the CSRF header are refused', async () => {
      const res = await server.app.inject({ method: 'POST', url: '/api/auth/login', payload: { email: 'admin@example.com', password: 'correct horse battery' } });
      const cookie = String(res.headers['set-cookie']);
      assert.match(cookie, /HttpOnly/);
      assert.match(cookie, /SameSite=Lax/);
      assert.doesNotMatch(cookie, /Secure/, 'plain HTTP: no Secure flag');
      const client = new Client(server.app);
      client.cookie = cookie.split(';')[0]!;
      const noCsrf = await client.request('POST', '/api/keys', { name: 'laptop' });
      assert.equal(noCsrf.statusCode, 403);
      assert.match(noCsrf.json().error, /x-csrf-token/);
      client.csrf = 'wrong';
      assert.equal((await client.request('POST', '/api/keys', { name: 'laptop' })).statusCode, 403);
      client.csrf = res.json().csrfToken;
      assert.equal((await client.request('POST', '/api/keys', { name: 'laptop' })).statusCode, 201);
      // Behind a TLS-terminating proxy that the server trusts, the cookie is Secure.
    });

    test('failed sign-ins are limited per account; the right password is refused too while locked', async () => {
      const c = new Client(server.app);
      for (let i = 0; i < 5; i++) assert.equal((await c.request('POST', '/api/auth/login', { email: 'carol@example.com', password: 'wrong password!' })).statusCode, 401);
      const locked = await c.request('POST', '/api/auth/login', { email: 'carol@example.com', password: 'correct horse battery' });
      assert.equal(locked.statusCode, 429);
      assert.ok(Number(locked.headers['retry-after']) > 0);
      const unknown = await c.request('POST', '/api/auth/login', { email: 'nobody@example.com', password: 'correct horse battery' });
      assert.equal(unknown.statusCode, 429, 'the same address is locked as well');
      await server.ctx.db.deleteFrom('login_throttle').execute();
    });

    test('a password change ends the other sessions; sign-out ends this one', async () => {
      const a = await new Client(server.app).login('bob@example.com');
      const b = await new Client(server.app).login('bob@example.com');
      const wrong = await a.request('POST', '/api/auth/password', { currentPassword: 'not it at all', newPassword: 'a new long password' });
      assert.equal(wrong.statusCode, 403);
      await a.json('POST', '/api/auth/password', { currentPassword: 'correct horse battery', newPassword: 'a new long password' });
      assert.equal((await b.request('GET', '/api/auth/session')).statusCode, 401);
      assert.equal((await a.request('GET', '/api/auth/session')).statusCode, 200);
      await a.json('POST', '/api/auth/logout');
      assert.equal((await a.request('GET', '/api/auth/session')).statusCode, 401);
      await new Client(server.app).login('bob@example.com', 'a new long password');
    });

    test('an API key is shown once, stored hashed, records its last use and stops when revoked', async () => {
      const admin = await new Client(server.app).login('admin@example.com');
      const created = await admin.json<{ id: string; key: string }>('POST', '/api/keys', { name: 'nas' }, 201);
      assert.match(created.key, /^cof_/);
      const stored = await server.ctx.db.selectFrom('api_keys').selectAll().where('id', '=', created.id).executeTakeFirstOrThrow();
      assert.notEqual(stored.key_hash, created.key);
      assert.ok(!JSON.stringify(stored).includes(created.key));
      const listed = await admin.json<{ id: string; lastUsedAt: number | null }[]>('GET', '/api/keys');
      const entry = listed.find((k) => k.id === created.id)!;
      assert.equal(entry.lastUsedAt, null);
      assert.ok(!JSON.stringify(listed).includes(created.key));
      // A key is not a session: it cannot reach the user's routes.
      const asKey = await server.app.inject({ url: '/api/keys', headers: { authorization: `Bearer ${created.key}` } });
      assert.equal(asKey.statusCode, 401);
      assert.notEqual((await admin.json<{ lastUsedAt: number | null }[]>('GET', '/api/keys')).find((k) => k.lastUsedAt !== null), undefined);
      await admin.json('DELETE', `/api/keys/${created.id}`);
      const revoked = (await admin.json<{ id: string; revokedAt: number | null }[]>('GET', '/api/keys')).find((k) => k.id === created.id)!;
      assert.ok(revoked.revokedAt);
    });
  });
}
