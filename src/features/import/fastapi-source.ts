import pg from 'pg';
import type { SourceUser } from './record.js';

interface FastapiRow {
  id: number;
  uuid: string | null;
  email: string;
  is_active: boolean | null;
  hashed_password: string | null;
  first_name: string | null;
  last_name: string | null;
  auth_provider: string | null;
  created_at: Date | null;
  updated_at: Date | null;
}

/**
 * What a row of the FastAPI service's `users` table means for Tessera: `uuid` is the
 * user id (the `sub` other services know), `is_active` a confirmed address. GOOGLE and
 * APPLE users come without a password and unconfirmed: the original never verified
 * their `third_party_id` (nor, so, their address), so they prove the address first
 * (a password reset or the confirmation link), and no identity is linked from it.
 */
export function fromFastapiRow(r: FastapiRow): SourceUser {
  const social = r.auth_provider !== null && r.auth_provider !== 'EMAIL';
  const base = {
    sourceRef: `id ${r.id}`,
    id: r.uuid,
    email: r.email,
    passwordHash: social ? null : r.hashed_password,
    firstName: r.first_name,
    lastName: r.last_name,
    emailVerified: !social && r.is_active === true,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    roles: [],
  };
  if (r.uuid === null) return { ...base, problem: 'no uuid: the original issued no tokens for this row, so it has no id to keep' };
  if (!social && r.hashed_password === null) return { ...base, problem: 'an EMAIL user without a password hash' };
  return base;
}

/**
 * The source's users in batches of `batchSize`, ordered by its `id` and read by keyset
 * (`WHERE id > $last`), so memory stays constant and each query is an index range scan.
 */
export async function* readFastapiUsers(url: string, batchSize: number, afterId = 0): AsyncGenerator<SourceUser[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    // Naive timestamps (SQLAlchemy's DateTime) are read as UTC, whatever this process's or the server's zone.
    await client.query(`SET TIME ZONE 'UTC'`);
    let last = afterId;
    for (;;) {
      const { rows } = await client.query<FastapiRow>(
        `SELECT id, uuid::text AS uuid, email, is_active, hashed_password, first_name, last_name, auth_provider::text AS auth_provider, created_at::timestamptz AS created_at, updated_at::timestamptz AS updated_at
           FROM users WHERE id > $1 ORDER BY id LIMIT $2`,
        [last, batchSize],
      );
      if (!rows.length) return;
      last = rows[rows.length - 1]?.id ?? last;
      yield rows.map(fromFastapiRow);
      if (rows.length < batchSize) return;
    }
  } finally {
    await client.end();
  }
}
