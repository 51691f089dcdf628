import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, bearer, createTestApp, json, uniqueEmail, type TestApp } from '../helpers/test-app.js';

// Findings of the review of the issue-14 fixes (branch review/attack): each test
// failed on main at e6a05bb.

let t: TestApp;

const call = (app: FastifyInstance, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, token: string, payload?: object) =>
  app.inject({ method, url, headers: bearer(token), ...(payload ? { payload } : {}) });

async function signIn(email: string, password = PASSWORD) {
  const res = await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email, password } });
  expect(res.statusCode, res.body).toBe(200);
  return json(res) as { access_token: string; refresh_token: string };
}

beforeAll(async () => {
  t = await createTestApp();
});
afterAll(async () => {
  await t?.close();
});

describe('the last administrator', () => {
  it('cannot delete its own account through DELETE /users/me (409 last_admin), as through the admin API', async () => {
    const email = uniqueEmail('lastadmin');
    const created = await t.app.services.admin.createUser(null, { email, password: PASSWORD, emailVerified: true, roles: ['admin', 'user'], sendInvite: false });
    const { access_token } = await signIn(email);
    // Is it the only enabled admin of this database? The test app's database is fresh: yes.
    const res = await call(t.app, 'DELETE', '/users/me', access_token, { password: PASSWORD });
    expect(res.statusCode, res.body).toBe(409);
    expect(json(res).error).toBe('last_admin');
    expect((await t.app.services.admin.getUser(created.id)).roles).toContain('admin');
  });
});
