import { randomUUID } from 'node:crypto';
import bcrypt from 'bcrypt';
import { eq } from 'drizzle-orm';
import { decodeJwt } from 'jose';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { users } from '../../src/features/accounts/tables.js';
import { PASSWORD, bearer, createTestApp, json, uniqueEmail, type TestApp } from '../helpers/test-app.js';

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp();
});
afterAll(async () => {
  await t?.close();
});

const register = (app: FastifyInstance, payload: Record<string, unknown>) => app.inject({ method: 'POST', url: '/auth/register', payload });
const login = (app: FastifyInstance, email: string, password: string) => app.inject({ method: 'POST', url: '/auth/login', payload: { email, password } });
const tokenForm = (app: FastifyInstance, fields: Record<string, string>) =>
  app.inject({
    method: 'POST',
    url: '/auth/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams(fields).toString(),
  });
const rawJson = (app: FastifyInstance, method: 'POST' | 'PATCH', url: string, body: string, headers: Record<string, string> = {}) =>
  app.inject({ method, url, headers: { ...headers, 'content-type': 'application/json' }, payload: body });

async function rowsByEmail(app: TestApp, email: string) {
  return app.db.handle.db.select().from(users).where(eq(users.email, email));
}
async function rowById(app: TestApp, id: string) {
  const rows = await app.db.handle.db.select().from(users).where(eq(users.id, id));
  expect(rows).toHaveLength(1);
  return rows[0]!;
}

function expectError(res: LightMyRequestResponse, status: number, code: string) {
  expect(res.statusCode, res.body).toBe(status);
  expect(json(res).error).toBe(code);
}

/** Registers through the API and asserts it worked. */
async function registered(app: FastifyInstance, email: string, password = PASSWORD) {
  const res = await register(app, { email, password });
  expect(res.statusCode, res.body).toBe(201);
  return json(res) as { id: string; email: string };
}

/** A user inserted straight into the database, as a migration from another system would. */
async function insertUser(app: TestApp, email: string, passwordHash: string) {
  const [row] = await app.db.handle.db.insert(users).values({ email, passwordHash }).returning();
  return row!;
}

/** `$2b$04$…` → `$2a$04$…` / `$2y$04$…`: the same hash as other bcrypt implementations write it. */
const withPrefix = (hash: string, prefix: '$2a$' | '$2y$') => `${prefix}${hash.slice(4)}`;

const suffix = () => `${process.pid}.${Date.now()}.${Math.random().toString(36).slice(2, 8)}`;

describe('registration under concurrency', () => {
  it('20 simultaneous sign-ups of one email: one 201, nineteen 409, one row', async () => {
    const email = uniqueEmail('race');
    const responses = await Promise.all(Array.from({ length: 20 }, () => register(t.app, { email, password: PASSWORD })));
    const statuses = responses.map((r) => r.statusCode);
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(19);
    for (const r of responses.filter((x) => x.statusCode === 409)) expect(json(r).error).toBe('email_already_registered');
    expect(await rowsByEmail(t, email)).toHaveLength(1);
  });
});

describe('email canonical form', () => {
  it('case, surrounding whitespace and NFC/NFD variants are one account', async () => {
    const s = suffix();
    const nfc = `jos\u00e9.${s}@example.com`; // é as one code point
    const nfd = `jose\u0301.${s}@example.com`; // e + combining acute accent
    expect(nfc).not.toBe(nfd);
    const created = await registered(t.app, nfd);
    expect(created.email).toBe(nfc);

    const variants = [nfc, nfd, nfc.toUpperCase(), `  ${nfc}\t`, ` \n${nfd.toUpperCase()}  `, `JOS\u00c9.${s}@Example.Com`];
    for (const v of variants) {
      const again = await register(t.app, { email: v, password: 'another-fine-passphrase' });
      expectError(again, 409, 'email_already_registered');
    }
    const rows = await rowsByEmail(t, nfc);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.id).toBe(created.id);
    expect(await rowsByEmail(t, nfd)).toHaveLength(0);

    for (const v of variants) {
      const res = await login(t.app, v, PASSWORD);
      expect(res.statusCode, `login as ${JSON.stringify(v)}: ${res.body}`).toBe(200);
      expect(decodeJwt((json(res) as { access_token: string }).access_token).sub).toBe(created.id);
      const form = await tokenForm(t.app, { grant_type: 'password', username: v, password: PASSWORD });
      expect(form.statusCode, `token as ${JSON.stringify(v)}: ${form.body}`).toBe(200);
    }
  });

  it('an upper-case, padded registration is stored trimmed and lower-cased', async () => {
    const email = uniqueEmail('mixed');
    const created = await registered(t.app, `  ${email.toUpperCase()}  `);
    expect(created.email).toBe(email);
    expect((await rowById(t, created.id)).email).toBe(email);
  });
});

describe('one mailbox, one account (plain local@domain, UTS-46 domains)', () => {
  const detailsOf = (res: LightMyRequestResponse) => json(res).details as Array<{ field: string; message: string }>;

  it('the five spellings of the report: each is refused or folded into the one account', async () => {
    const local = `x.${suffix()}`;
    const plain = `${local}@example.test`;
    const created = await registered(t.app, plain);
    expect(created.email).toBe(plain);
    const refused = [`"${local}"@example.test`, `${local}@example.test.`, `y<${local}@example.test>`, `${local}@example.test,`];
    for (const spelling of refused) {
      const res = await register(t.app, { email: spelling, password: PASSWORD });
      expectError(res, 422, 'invalid_email');
      expect(detailsOf(res), spelling).toEqual([{ field: 'email', message: 'invalid' }]);
    }
    // Fullwidth letters fold (UTS-46): the same address, so the second registration is the duplicate.
    const fullwidth = `${local}@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.test`;
    expectError(await register(t.app, { email: fullwidth, password: PASSWORD }), 409, 'email_already_registered');
    const rows = await t.db.handle.db.select().from(users);
    expect(rows.filter((r) => r.email.includes(local))).toEqual([expect.objectContaining({ id: created.id, email: plain })]);
    // Signing in with the folded spelling finds the account.
    const res = await login(t.app, fullwidth, PASSWORD);
    expect(res.statusCode, res.body).toBe(200);
    expect(decodeJwt((json(res) as { access_token: string }).access_token).sub).toBe(created.id);
  });

  it('a fullwidth registration is stored as the plain address, so the plain one is the duplicate', async () => {
    const local = `fw.${suffix()}`;
    const created = await registered(t.app, `${local}@\uff25\uff38\uff21\uff2d\uff30\uff2c\uff25\uff0etest`);
    expect(created.email).toBe(`${local}@example.test`);
    expectError(await register(t.app, { email: `${local}@example.test`, password: PASSWORD }), 409, 'email_already_registered');
  });

  it('an internationalised domain in Unicode and in punycode is one account, stored as punycode', async () => {
    const local = `idn.${suffix()}`;
    const created = await registered(t.app, `${local}@Bücher.example`);
    expect(created.email).toBe(`${local}@xn--bcher-kva.example`);
    expect((await rowById(t, created.id)).email).toBe(`${local}@xn--bcher-kva.example`);
    expectError(await register(t.app, { email: `${local}@xn--bcher-kva.example`, password: PASSWORD }), 409, 'email_already_registered');
    expectError(await register(t.app, { email: `${local}@bu\u0308cher.example`, password: PASSWORD }), 409, 'email_already_registered');
    for (const spelling of [`${local}@bücher.example`, `${local}@XN--BCHER-KVA.example`]) {
      const res = await login(t.app, spelling, PASSWORD);
      expect(res.statusCode, `${spelling}: ${res.body}`).toBe(200);
      expect(decodeJwt((json(res) as { access_token: string }).access_token)).toMatchObject({ sub: created.id, email: created.email });
    }
  });

  it('a domain label mixing scripts (a lookalike) is refused, in Unicode and in punycode', async () => {
    for (const email of [`cf.${suffix()}@\u0430pple.com`, `cf.${suffix()}@xn--pple-43d.com`, `p\u0430ypal.${suffix()}@example.com`]) {
      const res = await register(t.app, { email, password: PASSWORD });
      expectError(res, 422, 'invalid_email');
    }
  });

  it('every other entry point takes the same form: forgot, resend, email change, admin create', async () => {
    const local = `entry.${suffix()}`;
    const user = await registered(t.app, `${local}@example.test`);
    const tokens = json(await login(t.app, `${local}@example.test`, PASSWORD)) as { access_token: string };
    const bad = `y<${local}@example.test>`;
    for (const url of ['/auth/password/forgot', '/auth/confirm-email/resend']) {
      expectError(await t.app.inject({ method: 'POST', url, payload: { email: bad } }), 422, 'invalid_email');
    }
    const change = await t.app.inject({
      method: 'POST',
      url: '/users/me/email',
      headers: bearer(tokens.access_token),
      payload: { new_email: `"${local}.new"@example.test`, password: PASSWORD },
    });
    expectError(change, 422, 'invalid_email');
    expect(detailsOf(change)).toEqual([{ field: 'new_email', message: 'invalid' }]);

    const adminEmail = `admin.${suffix()}@example.test`;
    await t.app.services.admin.createUser(null, { email: adminEmail, password: PASSWORD, emailVerified: true, roles: ['admin', 'user'], sendInvite: false });
    const admin = json(await login(t.app, adminEmail, PASSWORD)) as { access_token: string };
    const create = (email: string) =>
      t.app.inject({ method: 'POST', url: '/admin/users', headers: bearer(admin.access_token), payload: { email, send_invite: false } });
    expectError(await create(`${local}@example.test,`), 422, 'invalid_email');
    expectError(await create(`${local}@\uff45xample.test`), 409, 'email_already_registered');
    const idn = await create(`new.${local}@Bücher.example`);
    expect(idn.statusCode, idn.body).toBe(201);
    expect(json(idn).email).toBe(`new.${local}@xn--bcher-kva.example`);
    expect((await rowById(t, user.id)).email).toBe(`${local}@example.test`);
  });
});

describe('input validation', () => {
  it.each([
    'plainaddress',
    'no-domain@',
    '@example.com',
    'two@@example.com',
    'a@b',
    'spa ce@example.com',
    'dots@example..com',
    'bell\u0007@example.com',
    '   ',
    `${'x'.repeat(65)}@example.com`,
    `someone@${'d'.repeat(250)}.com`,
  ])('invalid email %j → 422 invalid_email, nothing stored', async (email) => {
    const res = await register(t.app, { email, password: PASSWORD });
    expectError(res, 422, 'invalid_email');
    expect(await rowsByEmail(t, email.trim().toLowerCase())).toHaveLength(0);
  });

  it.each([
    [{ password: PASSWORD }, 'email'],
    [{ email: 'missing.password@example.com' }, 'password'],
    [{ email: 'missing.password@example.com', password: null }, 'password'],
  ])('%j → 422 validation_failed naming %s', async (payload, field) => {
    const res = await register(t.app, payload);
    expectError(res, 422, 'validation_failed');
    const details = json(res).details as Array<{ field: string; message: string }>;
    expect(details.map((d) => d.field)).toContain(field);
  });

  it('an empty object names the first missing field', async () => {
    const res = await register(t.app, {});
    expectError(res, 422, 'validation_failed');
    const fields = (json(res).details as Array<{ field: string }>).map((d) => d.field);
    expect(fields.some((f) => f === 'email' || f === 'password')).toBe(true);
  });
});

describe('mass assignment', () => {
  const forged = (id: string) => ({
    email_verified: true,
    email_verified_at: '2000-01-01T00:00:00Z',
    emailVerifiedAt: '2000-01-01T00:00:00Z',
    roles: ['admin'],
    id,
    disabled_at: null,
    disabledAt: null,
    password_hash: 'x',
    passwordHash: 'x',
    has_password: false,
    created_at: '2000-01-01T00:00:00Z',
    createdAt: '2000-01-01T00:00:00Z',
    updated_at: '2000-01-01T00:00:00Z',
  });

  it('extra fields at registration are ignored: response, row and token claims', async () => {
    const email = uniqueEmail('mass');
    const forgedId = randomUUID();
    const res = await register(t.app, { ...forged(forgedId), email, password: PASSWORD, first_name: 'Ada' });
    expect(res.statusCode, res.body).toBe(201);
    const body = json(res);
    expect(body.id).not.toBe(forgedId);
    expect(body).toMatchObject({ email, email_verified: false, has_password: true, first_name: 'Ada', created_at: t.clock.now().toISOString() });
    expect(body).not.toHaveProperty('roles');
    expect(body).not.toHaveProperty('password_hash');

    const row = await rowById(t, body.id as string);
    expect(row.emailVerifiedAt).toBeNull();
    expect(row.disabledAt).toBeNull();
    expect(row.createdAt.toISOString()).toBe(t.clock.now().toISOString());
    expect(row.passwordHash).toMatch(/^\$2b\$04\$/);
    expect(await bcrypt.compare(PASSWORD, row.passwordHash!)).toBe(true);
    expect(await t.db.handle.db.select().from(users).where(eq(users.id, forgedId))).toHaveLength(0);

    const tok = await login(t.app, email, PASSWORD);
    expect(tok.statusCode).toBe(200);
    const claims = decodeJwt((json(tok) as { access_token: string }).access_token);
    expect(claims.sub).toBe(body.id);
    expect(claims.email_verified).toBe(false);
    expect(claims.roles).toEqual(['user']);
    expect(claims.permissions).toEqual([]);
  });

  it('extra fields at PATCH /users/me are ignored: response, row and token claims', async () => {
    const email = uniqueEmail('mass.patch');
    const created = await registered(t.app, email);
    const before = await rowById(t, created.id);
    const tok = await login(t.app, email, PASSWORD);
    const access = (json(tok) as { access_token: string }).access_token;

    t.clock.advance(60_000);
    const res = await t.app.inject({
      method: 'PATCH',
      url: '/users/me',
      headers: bearer(access),
      payload: { ...forged(randomUUID()), email: 'someone.else@example.com', first_name: 'Grace' },
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(json(res)).toMatchObject({
      id: created.id,
      email,
      email_verified: false,
      has_password: true,
      first_name: 'Grace',
      created_at: before.createdAt.toISOString(),
    });
    expect(json(res)).not.toHaveProperty('roles');

    const row = await rowById(t, created.id);
    expect(row.firstName).toBe('Grace');
    expect(row.email).toBe(email);
    expect(row.emailVerifiedAt).toBeNull();
    expect(row.disabledAt).toBeNull();
    expect(row.passwordHash).toBe(before.passwordHash);
    expect(row.createdAt.toISOString()).toBe(before.createdAt.toISOString());
    expect(await rowsByEmail(t, 'someone.else@example.com')).toHaveLength(0);

    const again = await login(t.app, email, PASSWORD);
    expect(again.statusCode).toBe(200);
    const claims = decodeJwt((json(again) as { access_token: string }).access_token);
    expect(claims).toMatchObject({ sub: created.id, email, email_verified: false, roles: ['user'], permissions: [] });
  });

  it('a forged disabled_at at registration does not disable the account', async () => {
    const email = uniqueEmail('mass.disabled');
    const res = await register(t.app, { email, password: PASSWORD, disabled_at: '2000-01-01T00:00:00Z' });
    expect(res.statusCode).toBe(201);
    expect((await rowById(t, json(res).id as string)).disabledAt).toBeNull();
    expect((await login(t.app, email, PASSWORD)).statusCode).toBe(200);
  });
});

describe('prototype pollution', () => {
  const expectUnpolluted = () => {
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
    expect(Object.getOwnPropertyNames(Object.prototype)).not.toContain('polluted');
  };

  const poisoned = (email: string) => [
    `{"email":"${email}","password":"${PASSWORD}","__proto__":{"polluted":true}}`,
    `{"email":"${email}","password":"${PASSWORD}","constructor":{"prototype":{"polluted":true}}}`,
    `{"email":"${email}","password":"${PASSWORD}","first_name":{"__proto__":{"polluted":true}}}`,
    `{"email":"${email}","password":"${PASSWORD}","nested":{"constructor":{"prototype":{"polluted":true}}}}`,
  ];

  it('JSON with __proto__ / constructor.prototype at register → 4xx, no account, no pollution', async () => {
    const email = uniqueEmail('proto');
    for (const body of poisoned(email)) {
      const res = await rawJson(t.app, 'POST', '/auth/register', body);
      expect(res.statusCode, `${body} → ${res.body}`).toBeGreaterThanOrEqual(400);
      expect(res.statusCode, `${body} → ${res.body}`).toBeLessThan(500);
      expectUnpolluted();
    }
    expect(await rowsByEmail(t, email)).toHaveLength(0);
  });

  it('the same at PATCH /users/me → 4xx, profile unchanged, no pollution', async () => {
    const email = uniqueEmail('proto.patch');
    const created = await registered(t.app, email);
    const access = (json(await login(t.app, email, PASSWORD)) as { access_token: string }).access_token;
    for (const body of [
      '{"first_name":"Eve","__proto__":{"polluted":true}}',
      '{"first_name":"Eve","constructor":{"prototype":{"polluted":true}}}',
      '{"first_name":{"__proto__":{"polluted":true}}}',
    ]) {
      const res = await rawJson(t.app, 'PATCH', '/users/me', body, bearer(access));
      expect(res.statusCode, `${body} → ${res.body}`).toBeGreaterThanOrEqual(400);
      expect(res.statusCode, `${body} → ${res.body}`).toBeLessThan(500);
      expectUnpolluted();
    }
    expect((await rowById(t, created.id)).firstName).toBeNull();
  });

  it('form bodies with __proto__[…] keys at /auth/token and /auth/register → no 5xx, no pollution', async () => {
    const email = uniqueEmail('proto.form');
    await registered(t.app, email);
    const form = (extra: string) => `${extra}&grant_type=password&username=${encodeURIComponent(email)}&password=${encodeURIComponent(PASSWORD)}`;
    for (const extra of ['__proto__[polluted]=1', 'constructor[prototype][polluted]=1', '__proto__.polluted=1', '__proto__=polluted']) {
      const res = await t.app.inject({
        method: 'POST',
        url: '/auth/token',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: form(extra),
      });
      expect([200, 400], `${extra} → ${res.body}`).toContain(res.statusCode);
      expectUnpolluted();
      const reg = await t.app.inject({
        method: 'POST',
        url: '/auth/register',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: `${extra}&email=${encodeURIComponent(uniqueEmail('proto.form.reg'))}&password=${encodeURIComponent(PASSWORD)}`,
      });
      expect(reg.statusCode, `${extra} → ${reg.body}`).toBeLessThan(500);
      expectUnpolluted();
    }
  });
});

describe('password rules', () => {
  // 72 ASCII bytes, not a common password.
  const p72 = 'k9#Vr2!q'.repeat(9);

  it('7 characters → 422 password_too_short; 8 → 201', async () => {
    const short = await register(t.app, { email: uniqueEmail('pw7'), password: 'Zq9!xw3' });
    expectError(short, 422, 'password_too_short');
    expect((json(short).details as Array<{ field: string }>)[0]!.field).toBe('password');
    await registered(t.app, uniqueEmail('pw8'), 'Zq9!xw3v');
  });

  it('characters are counted, not bytes or UTF-16 units', async () => {
    // 8 × é = 16 bytes: eight characters, long enough.
    const e8 = '\u00e9'.repeat(8);
    const email = uniqueEmail('pw.e8');
    await registered(t.app, email, e8);
    expect((await login(t.app, email, e8)).statusCode).toBe(200);
    // 7 × é = 14 bytes, 7 × 😀 = 28 bytes / 14 UTF-16 units: both only seven characters.
    expectError(await register(t.app, { email: uniqueEmail('pw.e7'), password: '\u00e9'.repeat(7) }), 422, 'password_too_short');
    expectError(await register(t.app, { email: uniqueEmail('pw.emoji7'), password: '\u{1F600}'.repeat(7) }), 422, 'password_too_short');
  });

  it('exactly 72 UTF-8 bytes is accepted and signs in; 73 bytes is refused, never truncated', async () => {
    expect(Buffer.byteLength(p72, 'utf8')).toBe(72);
    const email = uniqueEmail('pw72');
    await registered(t.app, email, p72);
    expect((await login(t.app, email, p72)).statusCode).toBe(200);

    const email73 = uniqueEmail('pw73');
    const long = await register(t.app, { email: email73, password: `${p72}x` });
    expectError(long, 422, 'password_too_long');
    expect((json(long).details as Array<{ field: string }>)[0]!.field).toBe('password');
    expect(await rowsByEmail(t, email73)).toHaveLength(0);
  });

  it('multibyte: 24 × € (72 bytes) is accepted; 25 × € (75 bytes) → password_too_long', async () => {
    const euro24 = '\u20ac'.repeat(24);
    expect(Buffer.byteLength(euro24, 'utf8')).toBe(72);
    const email = uniqueEmail('euro24');
    await registered(t.app, email, euro24);
    expect((await login(t.app, email, euro24)).statusCode).toBe(200);
    expectError(await register(t.app, { email: uniqueEmail('euro25'), password: '\u20ac'.repeat(25) }), 422, 'password_too_long');
  });

  it('a 72-byte password followed by more characters does not sign in (bcrypt would ignore them)', async () => {
    const email = uniqueEmail('trunc');
    await registered(t.app, email, p72);
    for (const longer of [`${p72}x`, `${p72}anything at all`, `${p72}\u20ac`]) {
      // bcrypt alone would accept it: the service must refuse before comparing.
      expect(await bcrypt.compare(longer, (await rowsByEmail(t, email))[0]!.passwordHash!)).toBe(true);
      expectError(await login(t.app, email, longer), 400, 'invalid_grant');
      expectError(await tokenForm(t.app, { grant_type: 'password', username: email, password: longer }), 400, 'invalid_grant');
    }
    expect((await login(t.app, email, p72)).statusCode).toBe(200);

    const euro24 = '\u20ac'.repeat(24);
    const email2 = uniqueEmail('trunc.euro');
    await registered(t.app, email2, euro24);
    expectError(await login(t.app, email2, `${euro24}\u20ac`), 400, 'invalid_grant');
  });

  it.each(['password123', 'Password1', 'qwertyuiop', 'iloveyou', 'PASSWORD123'])('common password %j → 422 password_too_common', async (password) => {
    const email = uniqueEmail('common');
    expectError(await register(t.app, { email, password }), 422, 'password_too_common');
    expect(await rowsByEmail(t, email)).toHaveLength(0);
  });
});

describe('sign-in does not reveal which emails exist', () => {
  it('unknown email and wrong password: same status, same body, on /auth/token (form) and /auth/login', async () => {
    const email = uniqueEmail('enum');
    await registered(t.app, email);
    const unknown = uniqueEmail('nobody');

    const formWrong = await tokenForm(t.app, { grant_type: 'password', username: email, password: 'wrong-password-123' });
    const formUnknown = await tokenForm(t.app, { grant_type: 'password', username: unknown, password: 'wrong-password-123' });
    expectError(formWrong, 400, 'invalid_grant');
    expect(formUnknown.statusCode).toBe(formWrong.statusCode);
    expect(json(formUnknown)).toEqual(json(formWrong));
    expect(Object.keys(json(formWrong)).sort()).toEqual(['error', 'error_description']);
    expect(formUnknown.headers['cache-control']).toBe(formWrong.headers['cache-control']);

    const loginWrong = await login(t.app, email, 'wrong-password-123');
    const loginUnknown = await login(t.app, unknown, 'wrong-password-123');
    expectError(loginWrong, 400, 'invalid_grant');
    expect(loginUnknown.statusCode).toBe(loginWrong.statusCode);
    expect(json(loginUnknown)).toEqual(json(loginWrong));
    expect(json(loginWrong)).toEqual(json(formWrong));
  });
});

describe('hashes from other bcrypt systems', () => {
  it.each(['$2a$', '$2y$'] as const)('a %s hash inserted in the database signs in, and only with its password', async (prefix) => {
    const password = `legacy ${prefix} passphrase`;
    const hash = withPrefix(bcrypt.hashSync(password, 4), prefix);
    expect(hash.startsWith(prefix)).toBe(true);
    const email = uniqueEmail(`legacy${prefix.replace(/\$/g, '')}`);
    const user = await insertUser(t, email, hash);

    const ok = await login(t.app, email, password);
    expect(ok.statusCode, ok.body).toBe(200);
    expect(decodeJwt((json(ok) as { access_token: string }).access_token).sub).toBe(user.id);
    expectError(await login(t.app, email, `${password}!`), 400, 'invalid_grant');
    // Still works on the next sign-in, whatever the first one did to the stored hash.
    expect((await tokenForm(t.app, { grant_type: 'password', username: email, password })).statusCode).toBe(200);
  });
});

describe('account state at sign-in', () => {
  it('a disabled user gets 400 invalid_grant on /auth/login and /auth/token', async () => {
    const email = uniqueEmail('disabled');
    const created = await registered(t.app, email);
    expect((await login(t.app, email, PASSWORD)).statusCode).toBe(200);
    await t.db.handle.db.update(users).set({ disabledAt: t.clock.now() }).where(eq(users.id, created.id));
    expectError(await login(t.app, email, PASSWORD), 400, 'invalid_grant');
    expectError(await tokenForm(t.app, { grant_type: 'password', username: email, password: PASSWORD }), 400, 'invalid_grant');
  });
});

describe('cost upgrade at sign-in (BCRYPT_ROUNDS=5)', () => {
  let t5: TestApp;
  beforeAll(async () => {
    t5 = await createTestApp({ env: { BCRYPT_ROUNDS: '5' } });
  });
  afterAll(async () => {
    await t5?.close();
  });

  it.each(['$2b$', '$2a$'] as const)('a cost-4 %s hash is re-hashed at cost 5 and the password still works', async (prefix) => {
    const password = 'upgrade me please';
    const original = bcrypt.hashSync(password, 4);
    const hash = prefix === '$2b$' ? original : withPrefix(original, prefix);
    const email = uniqueEmail('rehash');
    const user = await insertUser(t5, email, hash);
    expect(bcrypt.getRounds(hash)).toBe(4);

    const first = await login(t5.app, email, password);
    expect(first.statusCode, first.body).toBe(200);
    const stored = (await rowById(t5, user.id)).passwordHash!;
    expect(stored).not.toBe(hash);
    expect(bcrypt.getRounds(stored)).toBe(5);
    expect(await bcrypt.compare(password, stored)).toBe(true);

    expect((await login(t5.app, email, password)).statusCode).toBe(200);
    expectError(await login(t5.app, email, 'not the password'), 400, 'invalid_grant');
    // Already at the configured cost: left alone.
    expect((await rowById(t5, user.id)).passwordHash).toBe(stored);
  });

  it('a failed sign-in does not touch a low-cost hash', async () => {
    const hash = bcrypt.hashSync('the real password', 4);
    const email = uniqueEmail('rehash.fail');
    const user = await insertUser(t5, email, hash);
    expectError(await login(t5.app, email, 'a wrong password'), 400, 'invalid_grant');
    expect((await rowById(t5, user.id)).passwordHash).toBe(hash);
  });
});

describe('REQUIRE_EMAIL_VERIFICATION=true', () => {
  let tv: TestApp;
  beforeAll(async () => {
    tv = await createTestApp({ env: { REQUIRE_EMAIL_VERIFICATION: 'true' } });
  });
  afterAll(async () => {
    await tv?.close();
  });

  it('an unverified user cannot sign in; once verified, they can', async () => {
    const email = uniqueEmail('verify');
    const created = await registered(tv.app, email);
    expectError(await login(tv.app, email, PASSWORD), 403, 'email_not_verified');
    expectError(await tokenForm(tv.app, { grant_type: 'password', username: email, password: PASSWORD }), 403, 'email_not_verified');
    // The wrong password learns nothing about the address.
    expectError(await login(tv.app, email, 'not the password at all'), 400, 'invalid_grant');

    await tv.db.handle.db.update(users).set({ emailVerifiedAt: tv.clock.now() }).where(eq(users.id, created.id));
    const ok = await login(tv.app, email, PASSWORD);
    expect(ok.statusCode, ok.body).toBe(200);
    expect(decodeJwt((json(ok) as { access_token: string }).access_token)).toMatchObject({ sub: created.id, email_verified: true });
  });
});
