import { eq, sql, type SQLWrapper } from 'drizzle-orm';
import type { Database } from '../../infra/db/client.js';
import { users } from '../accounts/tables.js';
import { roles, userRoles } from './tables.js';
import type { Grants } from './grant-rules.js';

/**
 * The one definition of a user's grants as stored now: role names and the
 * distinct permissions of those roles, each sorted byte-wise (`collate "C"`, so
 * no database collation can reorder them). `userId` is a column or a value; the
 * sessions feature puts these columns into its refresh statement (one round trip,
 * through the rbac service's `grantColumns`), and the rbac service reads them alone (`grantsOf`).
 */
export function grantColumns(user: SQLWrapper) {
  return {
    roles: sql<string[]>`(select coalesce(array_agg(ur.role collate "C" order by ur.role collate "C"), '{}') from ${userRoles} ur where ur.user_id = ${user})`,
    permissions: sql<
      string[]
    >`(select coalesce(array_agg(distinct p collate "C" order by p collate "C"), '{}') from ${userRoles} ur join ${roles} r on r.name = ur.role cross join unnest(r.permissions) p where ur.user_id = ${user})`,
  };
}

/** A user's grants as stored now (none for an unknown user). */
export async function readGrants(db: Database, userId: string): Promise<Grants> {
  const [row] = await db.select(grantColumns(users.id)).from(users).where(eq(users.id, userId));
  return row ?? { roles: [], permissions: [] };
}
