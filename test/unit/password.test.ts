import { readdirSync, readFileSync } from 'node:fs';
import bcrypt from 'bcrypt';
import { afterAll, describe, expect, it } from 'vitest';
import { canonicalEmail, normaliseEmail } from '../../src/features/accounts/email.js';
import { checkPassword } from '../../src/features/accounts/password-policy.js';
import { createBcryptHasher, isHasherBusy, type HasherBusyError } from '../../src/infra/password-hasher.js';

describe('checkPassword', () => {
  it('accepts a long, uncommon password', () => {
    expect(checkPassword('correct horse battery staple')).toBeNull();
    expect(checkPassword('x7#Kp2!q')).toBeNull();
  });

  it('needs at least 8 characters, counted as code points', () => {
    expect(checkPassword('')).toBe('password_too_short');
    expect(checkPassword('x7#Kp2!')).toBe('password_too_short');
    // 4 emoji are 8 UTF-16 units but 4 characters.
    expect(checkPassword('😀😁😂🤣')).toBe('password_too_short');
    expect(checkPassword('😀😁😂🤣😃😄😅😆')).toBeNull();
  });

  it('allows at most 72 UTF-8 bytes (bcrypt would silently truncate)', () => {
    expect(checkPassword('a'.repeat(72))).toBeNull();
    expect(checkPassword('a'.repeat(73))).toBe('password_too_long');
    expect(checkPassword('€'.repeat(24))).toBeNull(); // 24 × 3 bytes = 72
    expect(checkPassword('€'.repeat(25))).toBe('password_too_long'); // 25 characters, 75 bytes
  });

  it('refuses common passwords, whatever their case', () => {
    for (const p of ['password', 'Password', 'PASSWORD1', '12345678', 'iloveyou', 'trustno1', 'QwErTyUiOp']) {
      expect(checkPassword(p), p).toBe('password_too_common');
    }
  });
});

describe('email', () => {
  it('normalises by trimming, lower-casing and NFC', () => {
    expect(normaliseEmail('  Ada.Lovelace@Example.COM \n')).toBe('ada.lovelace@example.com');
    const decomposed = 'Jose\u0301@example.com';
    const composed = 'jos\u00e9@example.com';
    expect(normaliseEmail(decomposed)).toBe(composed);
    expect(normaliseEmail(composed)).toBe(composed);
    expect(normaliseEmail(normaliseEmail(decomposed))).toBe(normaliseEmail(decomposed));
  });

  it('accepts ordinary addresses', () => {
    for (const e of ['a@b.co', 'first.last+tag@sub.example.com', 'josé@exämple.de', `${'a'.repeat(64)}@example.com`]) {
      expect(canonicalEmail(e), e).not.toBeNull();
    }
  });

  it('refuses malformed addresses', () => {
    const bad = [
      '',
      'plainaddress',
      '@example.com',
      'user@',
      'user@localhost',
      'a@b@example.com',
      'has space@example.com',
      'user@exa mple.com',
      'user..dots@example.com',
      'user@example..com',
      'tab\t@example.com',
      'nul\u0000@example.com',
      'bidi\u202e@example.com',
      `${'a'.repeat(65)}@example.com`,
      `a@${'b'.repeat(250)}.com`,
    ];
    for (const e of bad) expect(canonicalEmail(e), JSON.stringify(e)).toBeNull();
  });
});

describe('createBcryptHasher', () => {
  const hasher = createBcryptHasher(4, 2);
  afterAll(() => hasher.close());

  it('hashes with bcrypt 2b at the configured cost, and verifies', async () => {
    const hash = await hasher.hash('correct horse battery staple');
    expect(hash).toMatch(/^\$2b\$04\$[./A-Za-z0-9]{53}$/);
    expect(await hasher.verify('correct horse battery staple', hash)).toBe(true);
    expect(await hasher.verify('correct horse battery stapler', hash)).toBe(false);
    expect(await hasher.hash('correct horse battery staple')).not.toBe(hash); // salted
  });

  it('verifies $2a$, $2b$ and $2y$ hashes made by other systems', async () => {
    // OpenBSD test vector ($2a$).
    expect(await hasher.verify('U*U', '$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW')).toBe(true);
    expect(await hasher.verify('U*V', '$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW')).toBe(false);
    // PHP's password_verify() documentation example ($2y$).
    const php = '$2y$10$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a';
    expect(await hasher.verify('rasmuslerdorf', php)).toBe(true);
    expect(await hasher.verify('rasmuslerdorF', php)).toBe(false);
    // $2a$ made here with another salt minor.
    const twoA = bcrypt.hashSync('hunter2hunter2', bcrypt.genSaltSync(4, 'a'));
    expect(twoA.startsWith('$2a$04$')).toBe(true);
    expect(await hasher.verify('hunter2hunter2', twoA)).toBe(true);
  });

  it('returns false, without throwing, for anything that is not a bcrypt hash', async () => {
    const garbage = [
      '',
      'not-a-hash',
      'correct horse battery staple',
      '$2b$04$',
      '$2b$04$tooshort',
      `$2b$04$${'!'.repeat(53)}`,
      '$2x$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW',
      '$2b$99$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW',
      '$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG',
      '5f4dcc3b5aa765d61d8327deb882cf99',
    ];
    for (const hash of garbage) expect(await hasher.verify('password', hash), hash).toBe(false);
  });

  it('verifyDummy spends a verification and resolves', async () => {
    await expect(hasher.verifyDummy('whatever')).resolves.toBeUndefined();
  });

  it('needsRehash: true for a lower cost or garbage, false for the same or a higher cost', async () => {
    const cost4 = await hasher.hash('correct horse battery staple');
    const cost5 = createBcryptHasher(5, 1);
    expect(cost5.needsRehash(cost4)).toBe(true);
    await cost5.close();
    expect(hasher.needsRehash(cost4)).toBe(false);
    expect(hasher.needsRehash('$2y$10$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a')).toBe(false);
    expect(hasher.needsRehash('not-a-hash')).toBe(true);
  });

  it('refuses at once, with a Retry-After, a hash whose estimated wait passes maxWaitMs', async () => {
    const slow = createBcryptHasher(11, 1, { maxWaitMs: 20 });
    try {
      // One hash tells the hasher how long a hash takes here (cost 11: ~100 ms or more).
      await slow.hash('warm-up');
      const first = slow.hash('first');
      // The only thread is busy: the wait is estimated at half a hash (~50 ms or more).
      expect(slow.estimatedWaitMs).toBeGreaterThan(20);
      const refused = await slow.hash('second').catch((e: unknown) => e);
      expect(isHasherBusy(refused)).toBe(true);
      expect((refused as HasherBusyError).retryAfterSeconds).toBeGreaterThanOrEqual(1);
      await first;
      expect(slow.estimatedWaitMs).toBe(0);
      await expect(slow.hash('third')).resolves.toMatch(/^\$2b\$11\$/);
    } finally {
      await slow.close();
    }
  });

  it('hands each thread its running hash and the next one, and reports the rest as queued', async () => {
    const single = createBcryptHasher(4, 1);
    try {
      expect(single.queueDepth).toBe(0);
      const jobs = ['one', 'two', 'three', 'four'].map((p) => single.hash(`password-${p}`));
      expect(single.queueDepth).toBe(2);
      const hashes = await Promise.all(jobs);
      expect(single.queueDepth).toBe(0);
      expect(await single.verify('password-four', hashes[3]!)).toBe(true);
    } finally {
      await single.close();
    }
  });

  it.runIf(process.platform === 'linux')('hashes on threads at the nice value given (BCRYPT_NICE), never SCHED_IDLE, off the thread pool', async () => {
    // fields after the command name in /proc/<tid>/stat: [16] = nice, [38] = scheduling policy (5 = SCHED_IDLE)
    const threads = () =>
      readdirSync('/proc/self/task').flatMap((tid) => {
        try {
          const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
          const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
          return [{ nice: Number(f[16]), policy: Number(f[38]) }];
        } catch {
          return [];
        }
      });
    const niced = () => threads().filter((t) => t.nice === 7).length;
    const before = niced();
    const two = createBcryptHasher(4, 2, { nice: 7 });
    try {
      await Promise.all([two.hash('password-one'), two.hash('password-two')]);
      expect(niced() - before).toBe(2);
      expect(threads().some((t) => t.policy === 5)).toBe(false);
    } finally {
      await two.close();
    }
  });
});
