import { describe, expect, it } from 'vitest';
import type { VerifiedAccessToken } from '../../src/features/sessions/claims.js';
import type { TokenVerifier } from '../../src/features/sessions/token-verifier.js';
import { memoizeAccessTokens } from '../../src/features/sessions/verified-access-memo.js';
import { ManualClock } from '../../src/infra/clock.js';

const claims = (exp: number): VerifiedAccessToken => ({
  iss: 'i',
  aud: 'a',
  sub: '00000000-0000-4000-8000-000000000001',
  sid: '00000000-0000-4000-8000-000000000002',
  iat: exp - 900,
  exp,
  jti: 'j',
  email: 'a@example.com',
  email_verified: true,
  roles: ['user'],
  permissions: [],
  amr: ['pwd'],
});

function setup() {
  const clock = new ManualClock(1_000_000_000);
  let t = 0;
  let calls = 0;
  const valid = new Map<string, VerifiedAccessToken>([['good', claims(1_000_000 + 900)]]);
  const inner: TokenVerifier = {
    verifyAccess: async (token) => {
      calls++;
      return valid.get(token) ?? null;
    },
    verifyRefresh: async () => null,
    isOwnToken: async () => false,
  };
  const memo = memoizeAccessTokens(inner, clock, { ttlMs: 1000, now: () => t });
  return { memo, clock, valid, calls: () => calls, advance: (ms: number) => (t += ms) };
}

describe('memoizeAccessTokens', () => {
  it('verifies a token once per TTL, and hands out frozen claims', async () => {
    const s = setup();
    const a = await s.memo.verifyAccess('good');
    const b = await s.memo.verifyAccess('good');
    expect(s.calls()).toBe(1);
    expect(b).toBe(a);
    expect(Object.isFrozen(a)).toBe(true);
    expect(Object.isFrozen(a?.roles)).toBe(true);
    s.advance(1000);
    await s.memo.verifyAccess('good');
    expect(s.calls()).toBe(2);
  });

  it('never keeps a token that did not verify', async () => {
    const s = setup();
    expect(await s.memo.verifyAccess('bad')).toBeNull();
    expect(await s.memo.verifyAccess('bad')).toBeNull();
    expect(s.calls()).toBe(2);
  });

  it('refuses a remembered token once it expires', async () => {
    const s = setup();
    expect(await s.memo.verifyAccess('good')).not.toBeNull();
    s.clock.advance(900_000);
    s.valid.delete('good');
    expect(await s.memo.verifyAccess('good')).toBeNull();
  });
});
