import { eq } from 'drizzle-orm';
import { decodeJwt } from 'jose';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditEvents } from '../../src/features/audit/tables.js';
import { outbox } from '../../src/features/mail/tables.js';
import { userRoles } from '../../src/features/rbac/tables.js';
import { PASSWORD, bearer, createTestApp, json, signUp, uniqueEmail, type TestApp } from '../helpers/test-app.js';

// Roles and permissions from registration to the access token, the guards, and the
// audited admin API. The first admin is made the way an operator would without SQL
// access to the API: here through the same service the CLI uses.

let t: TestApp;
let admin: { access: string; userId: string; email: string };

const call = (app: FastifyInstance, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, token: string, payload?: object) =>
  app.inject({ method, url, headers: bearer(token), ...(payload ? { payload } : {}) });

async function signIn(email: string, password = PASSWORD) {
  const res = await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email, password } });
  expect(res.statusCode, res.body).toBe(200);
  return json(res) as { access_token: string; refresh_token: string };
}

beforeAll(async () => {
  t = await createTestApp();
  const email = uniqueEmail('root');
  const created = await t.app.services.admin.createUser(null, { email, password: PASSWORD, emailVerified: true, roles: ['admin', 'user'], sendInvite: false });
  admin = { access: (await signIn(email)).access_token, userId: created.id, email };
});
afterAll(async () => {
  await t?.close();
});

describe('roles in tokens', () => {
  it('a new user gets DEFAULT_ROLE; the admin token carries admin and *', async () => {
    const u = await signUp(t.app);
    expect(decodeJwt(u.access)).toMatchObject({ roles: ['user'], permissions: [] });
    expect(decodeJwt(admin.access)).toMatchObject({ roles: ['admin', 'user'], permissions: ['*'] });
  });

  it('mass assignment at registration or PATCH /users/me cannot grant a role', async () => {
    const email = uniqueEmail('sneaky');
    const reg = await t.app.inject({
      method: 'POST',
      url: '/auth/register',
      payload: { email, password: PASSWORD, roles: ['admin'], permissions: ['*'], role: 'admin' },
    });
    expect(reg.statusCode).toBe(201);
    const tokens = await signIn(email);
    expect(decodeJwt(tokens.access_token)).toMatchObject({ roles: ['user'], permissions: [] });
    await call(t.app, 'PATCH', '/users/me', tokens.access_token, { first_name: 'Eve', roles: ['admin'], permissions: ['*'] });
    const again = await t.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: tokens.refresh_token } });
    expect(decodeJwt(json(again).access_token as string)).toMatchObject({ roles: ['user'], permissions: [] });
    expect((await call(t.app, 'GET', '/admin/users', json(again).access_token as string)).statusCode).toBe(403);
  });
});

describe('guards', () => {
  it('without the permission: 403 forbidden; with it: 200; admin can do everything', async () => {
    const u = await signUp(t.app);
    const denied = await call(t.app, 'GET', '/admin/users', u.access);
    expect(denied.statusCode).toBe(403);
    expect(json(denied)).toMatchObject({ error: 'forbidden' });
    expect((await call(t.app, 'GET', '/admin/users', 'not-a-token')).statusCode).toBe(401);

    // A support role that may read users, nothing else.
    expect(
      (await call(t.app, 'POST', '/admin/roles', admin.access, { name: 'support', description: 'Reads users', permissions: ['users:read'] })).statusCode,
    ).toBe(201);
    expect((await call(t.app, 'POST', `/admin/users/${u.userId}/roles`, admin.access, { role: 'support' })).statusCode).toBe(204);
    // Tessera's own routes decide on the roles as stored now: the old token works at once; the next refresh carries them.
    expect((await call(t.app, 'GET', '/admin/users', u.access)).statusCode).toBe(200);
    const refreshed = json(await t.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: u.refresh } }));
    const access = refreshed.access_token as string;
    expect(decodeJwt(access)).toMatchObject({ roles: ['support', 'user'], permissions: ['users:read'] });
    expect((await call(t.app, 'GET', '/admin/users', access)).statusCode).toBe(200);
    expect((await call(t.app, 'GET', `/admin/users/${admin.userId}`, access)).statusCode).toBe(200);
    expect(json(await call(t.app, 'POST', '/admin/users', access, { email: uniqueEmail('x') })).error).toBe('forbidden');
    expect(json(await call(t.app, 'GET', '/admin/roles', access)).error).toBe('forbidden');

    // Taking the role away and revoking the sessions applies it at once.
    expect((await call(t.app, 'DELETE', `/admin/users/${u.userId}/roles/support`, admin.access)).statusCode).toBe(204);
    expect(json(await call(t.app, 'POST', `/admin/users/${u.userId}/sessions/revoke`, admin.access)).revoked).toBeGreaterThanOrEqual(1);
    expect((await call(t.app, 'GET', '/admin/users', access)).statusCode).toBe(401);
    expect((await t.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: refreshed.refresh_token as string } })).statusCode).toBe(400);
  });

  it('resource:* grants every action on that resource', async () => {
    const u = await signUp(t.app);
    await call(t.app, 'POST', '/admin/roles', admin.access, { name: 'user-admin', permissions: ['users:*'] });
    await call(t.app, 'POST', `/admin/users/${u.userId}/roles`, admin.access, { role: 'user-admin' });
    const access = (await signIn(u.email)).access_token;
    expect((await call(t.app, 'GET', '/admin/users', access)).statusCode).toBe(200);
    expect((await call(t.app, 'GET', '/admin/roles', access)).statusCode).toBe(403);
  });
});

describe('admin API', () => {
  it('disable: refresh fails at once, the existing access token fails /users/me, sign-in is refused; enable restores sign-in', async () => {
    const u = await signUp(t.app);
    expect((await call(t.app, 'POST', `/admin/users/${u.userId}/disable`, admin.access)).statusCode).toBe(204);
    expect((await t.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: u.refresh } })).statusCode).toBe(400);
    expect((await call(t.app, 'GET', '/users/me', u.access)).statusCode).toBe(401);
    expect(json(await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: u.email, password: PASSWORD } })).error).toBe('invalid_grant');
    const detail = json(await call(t.app, 'GET', `/admin/users/${u.userId}`, admin.access));
    expect(detail).toMatchObject({ disabled: true, roles: ['user'], mfa: { totp_enabled: false }, sessions: [], identities: [] });
    expect((await call(t.app, 'POST', `/admin/users/${u.userId}/enable`, admin.access)).statusCode).toBe(204);
    await signIn(u.email);
    // An administrator cannot lock themselves out here.
    expect(json(await call(t.app, 'POST', `/admin/users/${admin.userId}/disable`, admin.access)).error).toBe('cannot_modify_self');
  });

  it('the last enabled administrator cannot be demoted, disabled or deleted', async () => {
    const second = await signUp(t.app);
    expect((await call(t.app, 'POST', `/admin/users/${second.userId}/roles`, admin.access, { role: 'admin' })).statusCode).toBe(204);
    const secondAccess = (await signIn(second.email)).access_token;
    // With two admins, one may demote the other…
    expect((await call(t.app, 'DELETE', `/admin/users/${admin.userId}/roles/admin`, secondAccess)).statusCode).toBe(204);
    // …after which `second` is the last one: no removal (the CLI path, or stepping down), no delete —
    // and the demoted one may no longer touch an administrator at all.
    await expect(t.app.services.admin.removeRole(null, second.userId, 'admin')).rejects.toMatchObject({ code: 'last_admin' });
    expect(json(await call(t.app, 'DELETE', `/admin/users/${second.userId}/roles/admin`, secondAccess)).error).toBe('last_admin');
    await expect(t.app.services.admin.deleteUser({ id: admin.userId, ip: null, userAgent: null }, second.userId)).rejects.toMatchObject({ code: 'forbidden' });
    // Two admins again: the other one can be disabled and deleted; the remaining one is protected.
    expect((await call(t.app, 'POST', `/admin/users/${admin.userId}/roles`, secondAccess, { role: 'admin' })).statusCode).toBe(204);
    admin.access = (await signIn(admin.email)).access_token;
    expect((await call(t.app, 'POST', `/admin/users/${second.userId}/disable`, admin.access)).statusCode).toBe(204);
    expect((await call(t.app, 'DELETE', `/admin/users/${second.userId}`, admin.access)).statusCode).toBe(204);
    await expect(t.app.services.admin.removeRole(null, admin.userId, 'admin')).rejects.toMatchObject({ code: 'last_admin' });
  });

  it('list and search with cursor pagination, by email prefix, role and status', async () => {
    const prefix = `page${Date.now()}`;
    for (let i = 0; i < 5; i++) {
      await signUp(t.app, `${prefix}.${i}@example.com`);
      t.clock.advance(1000);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const q: string = `/admin/users?email_prefix=${prefix}&limit=2${cursor ? `&cursor=${cursor}` : ''}`;
      const page = json(await call(t.app, 'GET', q, admin.access)) as { users: Array<{ email: string }>; next_cursor: string | null };
      expect(page.users.length).toBeLessThanOrEqual(2);
      seen.push(...page.users.map((u) => u.email));
      cursor = page.next_cursor;
    } while (cursor);
    expect(seen).toEqual([4, 3, 2, 1, 0].map((i) => `${prefix}.${i}@example.com`));
    const admins = json(await call(t.app, 'GET', '/admin/users?role=admin', admin.access)) as { users: Array<{ id: string }> };
    expect(admins.users.map((u) => u.id)).toContain(admin.userId);
    expect((await call(t.app, 'GET', '/admin/users?cursor=garbage', admin.access)).statusCode).toBe(422);
    expect((await call(t.app, 'GET', '/admin/users?limit=1000', admin.access)).statusCode).toBe(422);
    // `%` and `_` in a prefix are literal characters, not patterns.
    expect((json(await call(t.app, 'GET', '/admin/users?email_prefix=%25', admin.access)) as { users: unknown[] }).users).toEqual([]);
  });

  it('create a user: pre-verified with a password, or invited by email to choose one', async () => {
    const email = uniqueEmail('made');
    const made = await call(t.app, 'POST', '/admin/users', admin.access, {
      email,
      password: 'a brand new passphrase 42',
      email_verified: true,
      roles: ['user'],
    });
    expect(made.statusCode, made.body).toBe(201);
    expect(json(made)).toMatchObject({ email, email_verified: true });
    await signIn(email, 'a brand new passphrase 42');

    const invited = uniqueEmail('invited');
    expect((await call(t.app, 'POST', '/admin/users', admin.access, { email: invited })).statusCode).toBe(201);
    const rows = await t.db.handle.db.select().from(outbox).where(eq(outbox.recipient, invited));
    expect(rows.map((r) => r.kind)).toEqual(['invite']);
    expect(json(await call(t.app, 'POST', '/admin/users', admin.access, { email: invited })).error).toBe('email_already_registered');
    expect(json(await call(t.app, 'POST', '/admin/users', admin.access, { email: uniqueEmail('r'), roles: ['nope'] })).error).toBe('role_not_found');
  });

  it('roles: create, update, delete; built-ins stay; names and permissions are validated', async () => {
    expect(json(await call(t.app, 'POST', '/admin/roles', admin.access, { name: 'Bad Name', permissions: [] })).error).toBe('validation_failed');
    expect(json(await call(t.app, 'POST', '/admin/roles', admin.access, { name: 'refunds', permissions: ['orders:refund', 'has space'] })).error).toBe(
      'validation_failed',
    );
    expect((await call(t.app, 'POST', '/admin/roles', admin.access, { name: 'refunds', permissions: ['orders:refund'] })).statusCode).toBe(201);
    expect(json(await call(t.app, 'POST', '/admin/roles', admin.access, { name: 'refunds', permissions: [] })).error).toBe('role_exists');
    expect(json(await call(t.app, 'PATCH', '/admin/roles/refunds', admin.access, { permissions: ['orders:refund', 'orders:read'] }))).toMatchObject({
      permissions: ['orders:read', 'orders:refund'],
    });
    const list = json(await call(t.app, 'GET', '/admin/roles', admin.access)) as { roles: Array<{ name: string; builtin: boolean }> };
    expect(list.roles.find((r) => r.name === 'admin')).toMatchObject({ builtin: true });
    expect(json(await call(t.app, 'DELETE', '/admin/roles/admin', admin.access)).error).toBe('role_builtin');
    expect((await call(t.app, 'DELETE', '/admin/roles/refunds', admin.access)).statusCode).toBe(204);
    expect(json(await call(t.app, 'DELETE', '/admin/roles/refunds', admin.access)).error).toBe('role_not_found');
  });

  it('delete a user; every admin action is audited with the acting administrator', async () => {
    const u = await signUp(t.app);
    await call(t.app, 'POST', `/admin/users/${u.userId}/roles`, admin.access, { role: 'user' });
    expect((await call(t.app, 'DELETE', `/admin/users/${u.userId}`, admin.access)).statusCode).toBe(204);
    expect((await call(t.app, 'GET', `/admin/users/${u.userId}`, admin.access)).statusCode).toBe(404);
    expect(await t.db.handle.db.select().from(userRoles).where(eq(userRoles.userId, u.userId))).toEqual([]);
    const events = await t.db.handle.db.select().from(auditEvents).where(eq(auditEvents.userId, u.userId));
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(['admin_role_assigned', 'admin_user_deleted']));
    for (const e of events.filter((x) => x.type.startsWith('admin_'))) expect(e.details).toMatchObject({ actor: admin.userId });
    const all = await t.db.handle.db.select().from(auditEvents);
    expect(all.map((e) => e.type)).toEqual(
      expect.arrayContaining([
        'admin_role_created',
        'admin_role_updated',
        'admin_role_deleted',
        'admin_user_disabled',
        'admin_user_enabled',
        'admin_sessions_revoked',
        'admin_user_created',
      ]),
    );
  });
});
