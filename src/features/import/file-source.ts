import { createReadStream } from 'node:fs';
import { CsvError, parseCsv } from './csv.js';
import type { SourceUser } from './record.js';

/** The columns (CSV) and keys (JSONL) a file may have; `email` is required. */
export const FILE_COLUMNS = ['email', 'password_hash', 'first_name', 'last_name', 'email_verified', 'roles', 'id', 'created_at'] as const;
type Column = (typeof FILE_COLUMNS)[number];

const TRUE = new Set(['true', '1', 'yes', 't', 'y']);
const FALSE = new Set(['false', '0', 'no', 'f', 'n', '']);

/** A file's values (strings, or JSON values) → a SourceUser; what cannot be read becomes its `problem`. */
export function userFromValues(sourceRef: string, get: (c: Column) => unknown): SourceUser {
  const problems: string[] = [];
  const text = (c: Column): string | null => {
    const v = get(c);
    if (v === undefined || v === null || v === '') return null;
    if (typeof v === 'string') return v;
    problems.push(`${c} must be text`);
    return null;
  };
  const verified = get('email_verified');
  let emailVerified = false;
  if (typeof verified === 'boolean') emailVerified = verified;
  else if (verified === undefined || verified === null) emailVerified = false;
  else if (typeof verified === 'string' && TRUE.has(verified.trim().toLowerCase())) emailVerified = true;
  else if (!(typeof verified === 'string' && FALSE.has(verified.trim().toLowerCase())))
    problems.push(`email_verified ${JSON.stringify(verified)} is not true or false`);
  const rawRoles = get('roles');
  let roles: string[] = [];
  if (Array.isArray(rawRoles) && rawRoles.every((r) => typeof r === 'string')) roles = rawRoles;
  else if (typeof rawRoles === 'string') roles = rawRoles.split(/[\s,;]+/).filter(Boolean);
  else if (rawRoles !== undefined && rawRoles !== null) problems.push('roles must be a list of role names');
  const createdText = text('created_at');
  const createdAt = createdText === null ? null : new Date(createdText);
  if (createdAt && Number.isNaN(createdAt.getTime())) problems.push(`created_at ${JSON.stringify(createdText)} is not a date`);
  const email = text('email');
  if (email === null) problems.push('no email');
  const user: SourceUser = {
    sourceRef,
    id: text('id'),
    email: email ?? '',
    passwordHash: text('password_hash'),
    firstName: text('first_name'),
    lastName: text('last_name'),
    emailVerified,
    createdAt,
    updatedAt: null,
    roles,
  };
  return problems.length ? { ...user, problem: problems.join('; ') } : user;
}

async function* batched<T>(items: AsyncIterable<T>, size: number): AsyncGenerator<T[]> {
  let batch: T[] = [];
  for await (const item of items) {
    batch.push(item);
    if (batch.length >= size) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length) yield batch;
}

/** The users of a CSV file with a header row (FILE_COLUMNS); an unknown column is refused before anything is read. */
export async function* csvUsers(chunks: AsyncIterable<string> | Iterable<string>): AsyncGenerator<SourceUser> {
  let header: Column[] | null = null;
  for await (const rec of parseCsv(chunks)) {
    if (!header) {
      const names = rec.fields.map((f) => f.trim().toLowerCase());
      const unknown = names.filter((n) => !(FILE_COLUMNS as readonly string[]).includes(n));
      if (unknown.length)
        throw new CsvError(
          `line ${rec.line}: unknown column${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}; the columns are ${FILE_COLUMNS.join(', ')}`,
        );
      if (!names.includes('email')) throw new CsvError(`line ${rec.line}: the header has no email column`);
      if (new Set(names).size !== names.length) throw new CsvError(`line ${rec.line}: a column is named twice`);
      header = names as Column[];
      continue;
    }
    const cols = header;
    const ref = `line ${rec.line}`;
    if (rec.fields.length !== cols.length) {
      yield { ...userFromValues(ref, () => undefined), email: '', problem: `${rec.fields.length} fields, the header has ${cols.length}` };
      continue;
    }
    yield userFromValues(ref, (c) => rec.fields[cols.indexOf(c)]);
  }
}

/** The users of a JSON Lines file: one object per line (FILE_COLUMNS as keys); blank lines are skipped. */
export async function* jsonlUsers(lines: AsyncIterable<string> | Iterable<string>): AsyncGenerator<SourceUser> {
  let n = 0;
  for await (const line of lines) {
    n++;
    if (line.trim() === '') continue;
    const ref = `line ${n}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      // reported just below as a line that is not a JSON object
      value = undefined;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      yield { ...userFromValues(ref, () => undefined), problem: 'not a JSON object' };
      continue;
    }
    const obj = value as Record<string, unknown>;
    const unknown = Object.keys(obj).filter((k) => !(FILE_COLUMNS as readonly string[]).includes(k));
    const user = userFromValues(ref, (c) => obj[c]);
    yield unknown.length
      ? { ...user, problem: [user.problem, `unknown key${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}`].filter(Boolean).join('; ') }
      : user;
  }
}

/** Lines (LF or CRLF) of a stream of text chunks; a read error surfaces in the for-await. */
export async function* linesOf(chunks: AsyncIterable<string>): AsyncGenerator<string> {
  let rest = '';
  for await (const chunk of chunks) {
    const parts = (rest + chunk).split('\n');
    rest = parts.pop() ?? '';
    for (const line of parts) yield line.endsWith('\r') ? line.slice(0, -1) : line;
  }
  if (rest !== '') yield rest.endsWith('\r') ? rest.slice(0, -1) : rest;
}

/** A CSV or JSONL file's users in batches, read as a stream. */
export async function* readFileUsers(format: 'csv' | 'jsonl', file: string, batchSize: number): AsyncGenerator<SourceUser[]> {
  // Opened when the first batch is asked for, so an open error reaches the reader (not an unhandled 'error' event).
  const chunks = createReadStream(file, { encoding: 'utf8' }) as AsyncIterable<string>;
  yield* batched(format === 'csv' ? csvUsers(chunks) : jsonlUsers(linesOf(chunks)), batchSize);
}
