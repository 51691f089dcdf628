import bcrypt from 'bcrypt';
import { describe, expect, it } from 'vitest';
import { isValidEmail, normaliseEmail } from '../../src/features/accounts/email.js';
import { checkPassword } from '../../src/features/accounts/password-policy.js';
import { createBcryptHasher } from '../../src/infra/password-hasher.js';
import { Semaphore } from '../../src/infra/semaphore.js';

/** A promise plus the functions that settle it, so tests decide when "work" finishes. */
function deferred<T = void>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets every queued microtask (and promise continuation) run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

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
      expect(isValidEmail(e), e).toBe(true);
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
    for (const e of bad) expect(isValidEmail(e), JSON.stringify(e)).toBe(false);
  });
});

describe('createBcryptHasher', () => {
  const hasher = createBcryptHasher(4, 2);

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
    expect(createBcryptHasher(5, 1).needsRehash(cost4)).toBe(true);
    expect(hasher.needsRehash(cost4)).toBe(false);
    expect(hasher.needsRehash('$2y$10$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a')).toBe(false);
    expect(hasher.needsRehash('not-a-hash')).toBe(true);
  });

  it('runs at most `concurrency` hashes at once and reports the rest as queued', async () => {
    const single = createBcryptHasher(4, 1);
    expect(single.queueDepth).toBe(0);
    const jobs = [single.hash('password-one'), single.hash('password-two'), single.hash('password-three')];
    expect(single.queueDepth).toBe(2);
    const hashes = await Promise.all(jobs);
    expect(single.queueDepth).toBe(0);
    expect(await single.verify('password-three', hashes[2]!)).toBe(true);
  });
});

describe('Semaphore', () => {
  it('never runs more than N tasks at once, and starts waiters in FIFO order', async () => {
    const limit = 3;
    const gate = new Semaphore(limit);
    const work = Array.from({ length: 10 }, () => deferred<number>());
    const started: number[] = [];
    let running = 0;
    let maxRunning = 0;
    const results = work.map((d, i) =>
      gate.run(async () => {
        started.push(i);
        running++;
        maxRunning = Math.max(maxRunning, running);
        try {
          return await d.promise;
        } finally {
          running--;
        }
      }),
    );

    await settle();
    expect(started).toEqual([0, 1, 2]);
    expect(gate.pending).toBe(7);

    // Finish tasks out of order; each completion admits exactly the next waiter.
    work[1]!.resolve(1);
    await settle();
    expect(started).toEqual([0, 1, 2, 3]);
    expect(gate.pending).toBe(6);

    work[0]!.resolve(0);
    work[2]!.resolve(2);
    await settle();
    expect(started).toEqual([0, 1, 2, 3, 4, 5]);

    for (const [i, d] of work.entries()) d.resolve(i);
    expect(await Promise.all(results)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(maxRunning).toBe(limit);
    expect(running).toBe(0);
    expect(gate.pending).toBe(0);
  });

  it('a failing task frees its slot and its error reaches the caller', async () => {
    const gate = new Semaphore(1);
    const first = deferred();
    const a = gate.run(() => first.promise);
    let secondRan = false;
    const b = gate.run(async () => {
      secondRan = true;
      return 'b';
    });
    await settle();
    expect(secondRan).toBe(false);
    first.reject(new Error('boom'));
    await expect(a).rejects.toThrow('boom');
    await expect(b).resolves.toBe('b');
    expect(secondRan).toBe(true);

    // The slot is free again: a new task runs at once.
    let ran = false;
    await gate.run(async () => {
      ran = true;
    });
    expect(ran).toBe(true);
  });

  it('a task that throws synchronously also frees its slot', async () => {
    const gate = new Semaphore(1);
    await expect(
      gate.run(() => {
        throw new Error('sync');
      }),
    ).rejects.toThrow('sync');
    await expect(gate.run(async () => 'next')).resolves.toBe('next');
  });
});
