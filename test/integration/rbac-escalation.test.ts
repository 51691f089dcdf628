import { and, eq, inArray } from 'drizzle-orm';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { users } from '../../src/features/accounts/tables.js';
import { auditEvents } from '../../src/features/audit/tables.js';
import { outbox } from '../../src/features/mail/tables.js';
import { roles, userRoles } from '../../src/features/rbac/tables.js';
import { PASSWORD, bearer, createTestApp, json, signUp, uniqueEmail, type TestApp } from '../helpers/test-app.js';

// Privilege escalation through the admin API, by an attacker holding some but not all
// permissions: an actor only gives, edits or takes away what it holds itself (never to
// itself; `admin` only by an admin), and the API decides on the roles as stored now —
// a demoted administrator's still-valid access token is refused at once.

let t: TestApp;
let root: { access: string; userId: string };
let n = 0;

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';
const call = (method: Method, url: string, token: string, payload?: object) =>
  t.app.inject({ method, url, headers: bearer(token), ...(payload ? { payload } : {}) });
const errorOf = async (method: Method, url: string, token: string, payload?: object) => {
  const res = await call(method, url, token, payload);
  return res.statusCode < 300 ? res.statusCode : json(res).error;
};

/** A role made by the root admin (unique name). */
async function role(prefix: string, permissions: string[]): Promise<string> {
  const name = `${prefix}-${++n}`;
  const res = await call('POST', '/admin/roles', root.access, { name, permissions });
  expect(res.statusCode, res.body).toBe(201);
  return name;
}

/** A signed-up user given the extra roles by the root admin, with tokens that carry them. */
async function userWith(...extra: string[]) {
  const u = await signUp(t.app);
  for (const r of extra) expect((await call('POST', `/admin/users/${u.userId}/roles`, root.access, { role: r })).statusCode).toBe(204);
  const login = json(await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: u.email, password: PASSWORD } }));
  return { ...u, access: login.access_token as string, refresh: login.refresh_token as string };
}

const rolesOf = async (userId: string) =>
  (await t.db.handle.db.select({ role: userRoles.role }).from(userRoles).where(eq(userRoles.userId, userId))).map((r) => r.role).sort();
const permissionsOfRole = async (name: string) => (await t.db.handle.db.select().from(roles).where(eq(roles.name, name)))[0]?.permissions;
const userExists = async (email: string) => (await t.db.handle.db.select({ id: users.id }).from(users).where(eq(users.email, email))).length > 0;
const refreshed = async (refresh: string) => {
  const res = await t.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: refresh } });
  expect(res.statusCode, res.body).toBe(200);
  return decodeJwt(json(res).access_token as string);
};

beforeAll(async () => {
  t = await createTestApp();
  const email = uniqueEmail('root');
  const created = await t.app.services.admin.createUser(null, { email, password: PASSWORD, emailVerified: true, roles: ['admin', 'user'], sendInvite: false });
  const login = json(await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD } }));
  root = { access: login.access_token as string, userId: created.id };
});
afterAll(async () => {
  await t?.close();
});

describe('granting roles', () => {
  it('users:write cannot make itself or anyone admin: not by grant, not by creating a user, not by invite', async () => {
    const helpdesk = await userWith(await role('helpdesk', ['users:read', 'users:write']));
    const victim = await signUp(t.app);
    const plain = await role('plain', []);

    expect(await errorOf('POST', `/admin/users/${helpdesk.userId}/roles`, helpdesk.access, { role: 'admin' })).toBe('cannot_modify_self');
    // Never to itself, even a role it could hand out to others.
    expect(await errorOf('POST', `/admin/users/${helpdesk.userId}/roles`, helpdesk.access, { role: plain })).toBe('cannot_modify_self');
    expect(await errorOf('POST', `/admin/users/${victim.userId}/roles`, helpdesk.access, { role: 'admin' })).toBe('forbidden');

    const created = uniqueEmail('made');
    expect(
      await errorOf('POST', '/admin/users', helpdesk.access, { email: created, password: 'a brand new passphrase 42', email_verified: true, roles: ['admin'] }),
    ).toBe('forbidden');
    const invited = uniqueEmail('invited');
    expect(await errorOf('POST', '/admin/users', helpdesk.access, { email: invited, roles: ['user', 'admin'] })).toBe('forbidden');
    expect(await userExists(created)).toBe(false);
    expect(await userExists(invited)).toBe(false);
    expect(
      await t.db.handle.db
        .select()
        .from(outbox)
        .where(inArray(outbox.recipient, [created, invited])),
    ).toEqual([]);

    // What it may hand out, it may: a plain role to another user, a user with a plain role, an invite.
    expect(await errorOf('POST', `/admin/users/${victim.userId}/roles`, helpdesk.access, { role: plain })).toBe(204);
    expect(await errorOf('POST', '/admin/users', helpdesk.access, { email: invited, roles: ['user', plain] })).toBe(201);
    expect(await errorOf('POST', '/admin/users', helpdesk.access, { email: uniqueEmail('default') })).toBe(201);

    expect(await rolesOf(helpdesk.userId)).not.toContain('admin');
    expect(await rolesOf(victim.userId)).toEqual([plain, 'user'].sort());
    expect((await refreshed(helpdesk.refresh)).roles).not.toContain('admin');
  });

  it('only a role whose every permission the actor holds (`*` and `resource:*` count as written)', async () => {
    const refunds = await role('refunds', ['orders:refund']);
    const ordersAll = await role('orders-all', ['orders:*']);
    const everything = await role('everything', ['*']);
    const clerk = await userWith(await role('clerk', ['users:write', 'orders:refund']));
    const manager = await userWith(await role('manager', ['users:write', 'orders:*']));
    const target = await signUp(t.app);

    expect(await errorOf('POST', `/admin/users/${target.userId}/roles`, clerk.access, { role: refunds })).toBe(204);
    expect(await errorOf('POST', `/admin/users/${target.userId}/roles`, clerk.access, { role: ordersAll })).toBe('forbidden');
    expect(await errorOf('POST', `/admin/users/${target.userId}/roles`, clerk.access, { role: everything })).toBe('forbidden');
    const email = uniqueEmail('clerked');
    expect(await errorOf('POST', '/admin/users', clerk.access, { email, roles: [refunds, ordersAll] })).toBe('forbidden');
    expect(await userExists(email)).toBe(false);

    expect(await errorOf('POST', `/admin/users/${target.userId}/roles`, manager.access, { role: ordersAll })).toBe(204);
    expect(await errorOf('POST', `/admin/users/${target.userId}/roles`, manager.access, { role: everything })).toBe('forbidden');
    expect(await rolesOf(target.userId)).toEqual([ordersAll, refunds, 'user'].sort());
  });

  it('users:write cannot touch a user holding more than it does: disable, delete, revoke, take a role', async () => {
    const helpdesk = await userWith(await role('helpdesk', ['users:read', 'users:write']));
    const boss = await userWith('admin');
    const auditor = await userWith(await role('auditor', ['audit:read']));
    for (const target of [boss, auditor]) {
      expect(await errorOf('POST', `/admin/users/${target.userId}/disable`, helpdesk.access)).toBe('forbidden');
      expect(await errorOf('POST', `/admin/users/${target.userId}/sessions/revoke`, helpdesk.access)).toBe('forbidden');
      expect(await errorOf('DELETE', `/admin/users/${target.userId}/roles/user`, helpdesk.access)).toBe('forbidden');
      expect(await errorOf('DELETE', `/admin/users/${target.userId}`, helpdesk.access)).toBe('forbidden');
      expect((await call('GET', '/users/me', target.access)).statusCode).toBe(200);
    }
    expect(await rolesOf(boss.userId)).toEqual(['admin', 'user']);
    // A plain user it may manage.
    const plain = await signUp(t.app);
    expect(await errorOf('POST', `/admin/users/${plain.userId}/disable`, helpdesk.access)).toBe(204);
    expect(await errorOf('POST', `/admin/users/${plain.userId}/enable`, helpdesk.access)).toBe(204);
  });

  it('stepping down is allowed and applies at once; the last admin still cannot', async () => {
    const helpdeskRole = await role('helpdesk', ['users:read', 'users:write']);
    const helpdesk = await userWith(helpdeskRole);
    expect(await errorOf('DELETE', `/admin/users/${helpdesk.userId}/roles/${helpdeskRole}`, helpdesk.access)).toBe(204);
    expect(await errorOf('GET', '/admin/users', helpdesk.access)).toBe('forbidden');
    expect((await call('GET', '/users/me', helpdesk.access)).statusCode).toBe(200);
  });
});

describe('editing roles with roles:write', () => {
  it('cannot put a permission it lacks into user, its own role or a new one; cannot edit or delete a role above it', async () => {
    const editorRole = await role('role-editor', ['roles:read', 'roles:write', 'reports:read']);
    const editor = await userWith(editorRole);
    const refunds = await role('refunds', ['orders:refund']);

    expect(await errorOf('PATCH', '/admin/roles/user', editor.access, { permissions: ['*'] })).toBe('forbidden');
    expect(await errorOf('PATCH', '/admin/roles/user', editor.access, { permissions: ['users:write'] })).toBe('forbidden');
    expect(await errorOf('PATCH', `/admin/roles/${editorRole}`, editor.access, { permissions: ['roles:read', 'roles:write', 'reports:read', '*'] })).toBe(
      'forbidden',
    );
    expect(await errorOf('PATCH', `/admin/roles/${editorRole}`, editor.access, { permissions: ['roles:write', 'reports:*'] })).toBe('forbidden');
    expect(await errorOf('POST', '/admin/roles', editor.access, { name: `sneaky-${++n}`, permissions: ['users:*'] })).toBe('forbidden');
    expect(await errorOf('PATCH', '/admin/roles/admin', editor.access, { description: 'mine now' })).toBe('forbidden');
    expect(await errorOf('PATCH', '/admin/roles/admin', editor.access, { permissions: [] })).toBe('forbidden');
    expect(await errorOf('PATCH', `/admin/roles/${refunds}`, editor.access, { permissions: [] })).toBe('forbidden');
    expect(await errorOf('DELETE', `/admin/roles/${refunds}`, editor.access)).toBe('forbidden');

    expect(await permissionsOfRole('user')).toEqual([]);
    expect(await permissionsOfRole(editorRole)).toEqual(['reports:read', 'roles:read', 'roles:write']);
    expect(await permissionsOfRole('admin')).toEqual(['*']);
    expect(await permissionsOfRole(refunds)).toEqual(['orders:refund']);
    expect((await refreshed(editor.refresh)).permissions).toEqual(['reports:read', 'roles:read', 'roles:write']);

    // Within what it holds, it may.
    const own = `reports-${++n}`;
    expect(await errorOf('POST', '/admin/roles', editor.access, { name: own, permissions: ['reports:read'] })).toBe(201);
    expect(await errorOf('PATCH', `/admin/roles/${own}`, editor.access, { permissions: [], description: 'none' })).toBe(200);
    expect(await errorOf('DELETE', `/admin/roles/${own}`, editor.access)).toBe(204);
  });
});

describe('decided on the roles as stored now', () => {
  it("a demoted administrator's still-valid access token is refused at once on every /admin route", async () => {
    const demoted = await userWith('admin');
    const victim = await userWith();
    const spare = await role('spare', []);
    expect(decodeJwt(demoted.access)).toMatchObject({ roles: ['admin', 'user'], permissions: ['*'] });
    expect((await call('DELETE', `/admin/users/${demoted.userId}/roles/admin`, root.access)).statusCode).toBe(204);

    const routes: Array<[Method, string, object?]> = [
      ['GET', '/admin/users'],
      ['GET', `/admin/users/${victim.userId}`],
      ['POST', '/admin/users', { email: uniqueEmail('late'), roles: ['admin'] }],
      ['POST', `/admin/users/${victim.userId}/disable`],
      ['POST', `/admin/users/${victim.userId}/enable`],
      ['POST', `/admin/users/${victim.userId}/roles`, { role: 'admin' }],
      ['POST', `/admin/users/${demoted.userId}/roles`, { role: 'admin' }],
      ['DELETE', `/admin/users/${root.userId}/roles/admin`],
      ['POST', `/admin/users/${root.userId}/sessions/revoke`],
      ['DELETE', `/admin/users/${victim.userId}`],
      ['GET', '/admin/roles'],
      ['POST', '/admin/roles', { name: `late-${++n}`, permissions: ['*'] }],
      ['PATCH', '/admin/roles/user', { permissions: ['*'] }],
      ['DELETE', `/admin/roles/${spare}`],
    ];
    for (const [method, url, payload] of routes) {
      const res = await call(method, url, demoted.access, payload);
      expect(res.statusCode, `${method} ${url}: ${res.body}`).toBe(403);
      expect(json(res).error).toBe('forbidden');
    }
    // The token itself is still valid (the demotion did not sign them out), and still claims admin.
    expect((await call('GET', '/users/me', demoted.access)).statusCode).toBe(200);
    expect(decodeJwt(demoted.access)).toMatchObject({ roles: ['admin', 'user'] });
    // Nothing changed.
    expect(await rolesOf(demoted.userId)).toEqual(['user']);
    expect(await rolesOf(victim.userId)).toEqual(['user']);
    expect(await rolesOf(root.userId)).toEqual(['admin', 'user']);
    expect(await permissionsOfRole('user')).toEqual([]);
    expect(await permissionsOfRole(spare)).toEqual([]);
    expect((await call('GET', '/users/me', victim.access)).statusCode).toBe(200);
  });

  it('an administrator can still do everything', async () => {
    const other = await signUp(t.app);
    const everything = await role('everything', ['*']);
    expect(await errorOf('POST', `/admin/users/${other.userId}/roles`, root.access, { role: 'admin' })).toBe(204);
    expect(await errorOf('POST', `/admin/users/${other.userId}/roles`, root.access, { role: everything })).toBe(204);
    expect(await errorOf('PATCH', `/admin/roles/${everything}`, root.access, { permissions: ['*', 'orders:refund'] })).toBe(200);
    expect(await errorOf('POST', '/admin/users', root.access, { email: uniqueEmail('new-admin'), roles: ['admin', 'user'] })).toBe(201);
    expect(await errorOf('POST', `/admin/users/${other.userId}/sessions/revoke`, root.access)).toBe(200);
    expect(await errorOf('POST', `/admin/users/${other.userId}/disable`, root.access)).toBe(204);
    expect(await errorOf('POST', `/admin/users/${other.userId}/enable`, root.access)).toBe(204);
    expect(await errorOf('DELETE', `/admin/users/${other.userId}/roles/admin`, root.access)).toBe(204);
    expect(await errorOf('DELETE', `/admin/users/${other.userId}`, root.access)).toBe(204);
    expect(await errorOf('DELETE', `/admin/roles/${everything}`, root.access)).toBe(204);
  });
});

describe('races (parallel requests)', () => {
  it('two administrators demoting each other at once: exactly one wins in every pair', async () => {
    const pairs = await Promise.all(Array.from({ length: 6 }, async () => [await userWith('admin'), await userWith('admin')] as const));
    const results = await Promise.all(
      pairs.flatMap(([a, b]) => [
        call('DELETE', `/admin/users/${b.userId}/roles/admin`, a.access),
        call('DELETE', `/admin/users/${a.userId}/roles/admin`, b.access),
      ]),
    );
    for (const [i, [a, b]] of pairs.entries()) {
      const codes = [results[2 * i]?.statusCode, results[2 * i + 1]?.statusCode].sort();
      expect(codes, `pair ${i}`).toEqual([204, 403]);
      const admins = [...(await rolesOf(a.userId)), ...(await rolesOf(b.userId))].filter((r) => r === 'admin');
      expect(admins, `pair ${i}`).toHaveLength(1);
    }
  });

  it('the last two administrators demoting and disabling each other at once leave one', async () => {
    const a = await userWith('admin');
    const b = await userWith('admin');
    // Root steps down for this test (the CLI path), so a and b are the only administrators.
    await t.app.services.admin.removeRole(null, root.userId, 'admin');
    try {
      const results = await Promise.all([
        call('DELETE', `/admin/users/${b.userId}/roles/admin`, a.access),
        call('DELETE', `/admin/users/${a.userId}/roles/admin`, b.access),
        call('POST', `/admin/users/${b.userId}/disable`, a.access),
        call('POST', `/admin/users/${a.userId}/disable`, b.access),
      ]);
      // 401: a disable that landed first ended the other's session.
      for (const r of results) expect([204, 401, 403, 409], r.body).toContain(r.statusCode);
      const left = await t.db.handle.db
        .select({ id: users.id })
        .from(userRoles)
        .innerJoin(users, eq(users.id, userRoles.userId))
        .where(and(eq(userRoles.role, 'admin'), inArray(users.id, [a.userId, b.userId])));
      const enabled = await t.db.handle.db
        .select({ id: users.id, disabledAt: users.disabledAt })
        .from(users)
        .where(
          inArray(
            users.id,
            left.map((l) => l.id),
          ),
        );
      expect(enabled.filter((u) => u.disabledAt === null)).toHaveLength(1);
    } finally {
      await t.app.services.admin.addRole(null, root.userId, 'admin');
    }
  });

  it('grants racing the granter’s demotion: each either lands before it or is refused, none after', async () => {
    const granter = await userWith('admin');
    const targets = await Promise.all(Array.from({ length: 8 }, () => signUp(t.app)));
    const [demotion, ...grants] = await Promise.all([
      call('DELETE', `/admin/users/${granter.userId}/roles/admin`, root.access),
      ...targets.map((u) => call('POST', `/admin/users/${u.userId}/roles`, granter.access, { role: 'admin' })),
    ]);
    expect(demotion?.statusCode).toBe(204);
    let landed = 0;
    for (const [i, u] of targets.entries()) {
      const status = grants[i]?.statusCode;
      expect([204, 403]).toContain(status);
      expect((await rolesOf(u.userId)).includes('admin')).toBe(status === 204);
      if (status === 204) landed++;
    }
    const audited = await t.db.handle.db
      .select()
      .from(auditEvents)
      .where(
        and(
          eq(auditEvents.type, 'admin_role_assigned'),
          inArray(
            auditEvents.userId,
            targets.map((u) => u.userId),
          ),
        ),
      );
    expect(audited).toHaveLength(landed);
    // After the demotion has answered, the same token grants nothing.
    const late = await signUp(t.app);
    expect(await errorOf('POST', `/admin/users/${late.userId}/roles`, granter.access, { role: 'admin' })).toBe('forbidden');
    expect(await rolesOf(late.userId)).toEqual(['user']);
  });
});
