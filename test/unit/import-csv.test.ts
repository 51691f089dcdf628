import { describe, expect, it } from 'vitest';
import { CsvError, parseCsv } from '../../src/features/import/csv.js';
import { csvUsers, jsonlUsers, linesOf } from '../../src/features/import/file-source.js';
import { checkUser, hashProblem, idForEmail } from '../../src/features/import/record.js';

const collect = async <T>(it: AsyncIterable<T>): Promise<T[]> => {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
};
const rows = async (...chunks: string[]) => (await collect(parseCsv(chunks))).map((r) => r.fields);

describe('parseCsv', () => {
  it('splits plain fields and records on LF and CRLF, keeps empty fields, skips blank lines', async () => {
    expect(await rows('a,b,c\n1,,3\r\n\n,x,\n')).toEqual([
      ['a', 'b', 'c'],
      ['1', '', '3'],
      ['', 'x', ''],
    ]);
    expect(await rows('no,final,newline')).toEqual([['no', 'final', 'newline']]);
  });

  it('reads quoted fields with commas, doubled quotes and line breaks', async () => {
    expect(await rows('"a, b","say ""hi""","line 1\nline 2\r\nline 3"\n""\n')).toEqual([['a, b', 'say "hi"', 'line 1\nline 2\r\nline 3'], ['']]);
  });

  it('gives the line each record starts on, counting line breaks inside quotes', async () => {
    const recs = await collect(parseCsv(['h\n"x\ny"\nz\n']));
    expect(recs.map((r) => r.line)).toEqual([1, 2, 4]);
  });

  it('does not care where chunks split (inside quotes, between "" and across CRLF)', async () => {
    const text = 'email,first_name\r\n"a@x.io","Ann ""A"", Jr."\r\nb@x.io,"two\nlines"\r\n';
    const whole = await rows(text);
    for (let i = 1; i < text.length; i++) expect(await rows(text.slice(0, i), text.slice(i))).toEqual(whole);
    expect(await rows(...text.split(''))).toEqual(whole);
  });

  it('drops a byte order mark', async () => {
    expect(await rows('\uFEFFemail\nx@y.io\n')).toEqual([['email'], ['x@y.io']]);
  });

  it('refuses what it would have to guess at', async () => {
    await expect(rows('a,b"c\n')).rejects.toThrow(CsvError);
    await expect(rows('"a"b,c\n')).rejects.toThrow(/line 1: text after a closing quote/);
    await expect(rows('ok\n"never closed\n')).rejects.toThrow(/line 2: a quoted field is not closed/);
    await expect(rows('a\rb\n')).rejects.toThrow(/carriage return/);
  });
});

describe('file rows', () => {
  it('maps CSV columns; an unknown column is refused before any row', async () => {
    const users = await collect(
      csvUsers([
        'email,password_hash,first_name,last_name,email_verified,roles\nA@X.io,,Ann,,yes,"user editor"\nb@x.io,,,,maybe,\nc@x.io,too,many,fields,,,,\n',
      ]),
    );
    expect(users[0]).toMatchObject({
      sourceRef: 'line 2',
      email: 'A@X.io',
      passwordHash: null,
      firstName: 'Ann',
      lastName: null,
      emailVerified: true,
      roles: ['user', 'editor'],
    });
    expect(users[1]?.problem).toMatch(/email_verified "maybe" is not true or false/);
    expect(users[2]?.problem).toMatch(/8 fields, the header has 6/);
    await expect(collect(csvUsers(['email,pasword_hash\n']))).rejects.toThrow(/unknown column pasword_hash/);
    await expect(collect(csvUsers(['first_name\n']))).rejects.toThrow(/no email column/);
  });

  it('maps JSON Lines; bad lines are rows with a problem, blank lines are skipped', async () => {
    const users = await collect(
      jsonlUsers(['{"email":"a@x.io","email_verified":true,"roles":["user"]}', '', 'not json', '{"email":"b@x.io","pasword":"x"}', '{"email":5}']),
    );
    expect(users.map((u) => [u.sourceRef, u.problem ?? null])).toEqual([
      ['line 1', null],
      ['line 3', 'not a JSON object'],
      ['line 4', 'unknown key pasword'],
      ['line 5', 'email must be text; no email'],
    ]);
    expect(users[0]).toMatchObject({ email: 'a@x.io', emailVerified: true, roles: ['user'] });
  });
});

it('linesOf splits LF and CRLF across chunks', async () => {
  async function* chunks() {
    yield* ['a\r', '\nb', 'c\n\nd'];
  }
  expect(await collect(linesOf(chunks()))).toEqual(['a', 'bc', '', 'd']);
});

describe('checkUser', () => {
  const base = {
    sourceRef: '1',
    id: null,
    passwordHash: null,
    firstName: null,
    lastName: null,
    emailVerified: false,
    createdAt: null,
    updatedAt: null,
    roles: [],
  };
  const now = new Date('2026-01-01T00:00:00Z');

  it('keeps bcrypt ($2a$/$2b$/$2y$, cost 4-31) and refuses argon2 and anything else with a reason', () => {
    const salt = 'abcdefghijklmnopqrstuu5F7r8/bK3h1WQm0k3sV2VvCwAqgmLRi';
    for (const p of ['2a', '2b', '2y']) expect(hashProblem(`$${p}$12$${salt}`)).toBeNull();
    expect(hashProblem(`$2b$03$${salt}`)).toMatch(/not a bcrypt hash/);
    expect(hashProblem(`$2x$12$${salt}`)).toMatch(/not a bcrypt hash/);
    expect(hashProblem('$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA')).toMatch(/argon2/);
  });

  it('uses the one canonical address form; an address that is not plain is a conflict', () => {
    const ok = checkUser({ ...base, email: '  Ann@EXAMPLE.com ' }, now);
    expect(ok).toMatchObject({ ok: true, row: { email: 'ann@example.com', id: idForEmail('Ann@EXAMPLE.com'), emailVerifiedAt: null, createdAt: now } });
    expect(checkUser({ ...base, email: '"Ann" <ann@example.com>' }, now)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/invalid email/) as unknown,
    });
    expect(checkUser({ ...base, email: 'pаypal@example.com' }, now).ok).toBe(false);
  });

  it('derives a stable UUIDv5 from the address when the source has no id', () => {
    const id = idForEmail('ann@example.com');
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(idForEmail('ann@example.com')).toBe(id);
    expect(idForEmail('bob@example.com')).not.toBe(id);
    expect(checkUser({ ...base, email: 'a@x.io', id: 'nope' }, now)).toMatchObject({ ok: false, reason: 'id "nope" is not a UUID' });
  });
});
