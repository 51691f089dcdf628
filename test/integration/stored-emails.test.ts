import bcrypt from 'bcrypt';
import { inArray } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { users } from '../../src/features/accounts/tables.js';
import { reviewStoredEmails } from '../../src/features/accounts/stored-emails.js';
import { migrateDatabase } from '../../src/migrate.js';
import { PASSWORD, createTestApp, type TestApp } from '../helpers/test-app.js';

// Addresses stored before the canonical form existed: `tessera migrate` (and the start)
// rewrites those that alone reach their mailbox and reports, never merges, accounts that share one.

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp();
});
afterAll(async () => {
  await t?.close();
});

const s = `${process.pid}.${Date.now()}`;
const stored = {
  plain: `a.${s}@example.test`,
  quoted: `"a.${s}"@example.test`,
  trailingDot: `a.${s}@example.test.`,
  displayName: `y <a.${s}@example.test>`,
  unicodeDomain: `b.${s}@bücher.example`,
  fullwidth: `c.${s}@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.test`,
  separator: `d.${s}@example.test,`,
  punycode: `e.${s}@xn--bcher-kva.example`,
  lookalike: `f.${s}@\u0430pple.com`,
  garbage: `not an address ${s}`,
};

describe('stored addresses that are not canonical', () => {
  it('rewrites the ones alone in their mailbox, reports the colliding and the invalid ones, and is idempotent', async () => {
    const db = t.db.handle.db;
    const passwordHash = await bcrypt.hash(PASSWORD, 4);
    const rows = await db
      .insert(users)
      .values(Object.values(stored).map((email) => ({ email, passwordHash })))
      .returning();
    const idOf = (email: string) => rows.find((r) => r.email === email)!.id;

    // The check alone changes nothing.
    const preview = await reviewStoredEmails(db, { fix: false });
    expect(preview.canonicalised.filter((c) => c.from.includes(s))).toHaveLength(3);
    expect(
      (
        await db
          .select()
          .from(users)
          .where(
            inArray(
              users.id,
              rows.map((r) => r.id),
            ),
          )
      )
        .map((r) => r.email)
        .sort(),
    ).toEqual(Object.values(stored).sort());

    const lines: string[] = [];
    await migrateDatabase(t.db.handle, (line) => lines.push(line));
    const now = new Map(
      (
        await db
          .select()
          .from(users)
          .where(
            inArray(
              users.id,
              rows.map((r) => r.id),
            ),
          )
      ).map((r) => [r.id, r.email]),
    );

    // Alone in their mailbox: rewritten to it.
    expect(now.get(idOf(stored.unicodeDomain))).toBe(`b.${s}@xn--bcher-kva.example`);
    expect(now.get(idOf(stored.fullwidth))).toBe(`c.${s}@example.test`);
    expect(now.get(idOf(stored.separator))).toBe(`d.${s}@example.test`);
    expect(now.get(idOf(stored.punycode))).toBe(stored.punycode);
    // Four accounts reach a.…@example.test: all unchanged, reported together.
    for (const k of ['plain', 'quoted', 'trailingDot', 'displayName'] as const) expect(now.get(idOf(stored[k]))).toBe(stored[k]);
    const collision = lines.find((l) => l.startsWith('COLLISION') && l.includes(stored.plain));
    expect(collision).toContain(`4 accounts reach the mailbox ${stored.plain}`);
    for (const k of ['plain', 'quoted', 'trailingDot', 'displayName'] as const) expect(collision).toContain(idOf(stored[k]));
    // No single mailbox: unchanged, reported.
    expect(now.get(idOf(stored.lookalike))).toBe(stored.lookalike);
    expect(now.get(idOf(stored.garbage))).toBe(stored.garbage);
    expect(lines.filter((l) => l.startsWith('INVALID')).join('\n')).toContain(idOf(stored.lookalike));
    expect(lines.filter((l) => l.startsWith('INVALID')).join('\n')).toContain(idOf(stored.garbage));
    expect(lines.filter((l) => l.includes('rewritten'))).toHaveLength(3);

    // Run again: nothing left to rewrite; the same findings.
    const again = await reviewStoredEmails(db, { fix: true });
    expect(again.canonicalised).toEqual([]);
    expect(
      again.collisions
        .find((c) => c.mailbox === stored.plain)
        ?.users.map((u) => u.id)
        .sort(),
    ).toEqual(['plain', 'quoted', 'trailingDot', 'displayName'].map((k) => idOf(stored[k as keyof typeof stored])).sort());
    expect(again.invalid.map((u) => u.id).sort()).toEqual([idOf(stored.lookalike), idOf(stored.garbage)].sort());
  });

  it('a rewritten account signs in with any spelling of its address, the old one included', async () => {
    for (const email of [stored.unicodeDomain, `b.${s}@xn--bcher-kva.example`, stored.fullwidth, `C.${s}@example.test`]) {
      const res = await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD } });
      expect(res.statusCode, `${email}: ${res.body}`).toBe(200);
    }
  });
});
