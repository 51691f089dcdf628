/**
 * Who may hand out what: an actor may only give, edit or take away what it
 * could hold itself. Pure rules over grants as stored now (never a token's claims).
 */

/** The roles and flattened permissions of a user. */
export interface Grants {
  roles: string[];
  permissions: string[];
}

/** The built-in role that only an administrator may give, edit or take away. */
export const ADMIN_ROLE = 'admin';

/** Whether `granted` covers `wanted`: exact, `*`, or a `resource:*` prefix (so `orders:*` covers `orders:*` and `orders:refund`). */
export function permits(granted: readonly string[], wanted: string): boolean {
  return granted.some((g) => g === '*' || g === wanted || (g.endsWith(':*') && wanted.startsWith(g.slice(0, -1))));
}

/** The permissions of `wanted` that `actor` does not hold itself. */
export function notHeld(actor: Grants, wanted: readonly string[]): string[] {
  return wanted.filter((p) => !permits(actor.permissions, p));
}

/** Whether `actor` may give, edit or take away `role`: it holds every permission in it, and `admin` needs an admin. */
export function mayHandOut(actor: Grants, role: { name: string; permissions: readonly string[] }): boolean {
  if (role.name === ADMIN_ROLE && !actor.roles.includes(ADMIN_ROLE)) return false;
  return notHeld(actor, role.permissions).length === 0;
}

/** Whether `actor` may change `target`'s account or roles: it could have given the target everything the target holds. */
export function mayManage(actor: Grants, target: Grants): boolean {
  if (target.roles.includes(ADMIN_ROLE) && !actor.roles.includes(ADMIN_ROLE)) return false;
  return notHeld(actor, target.permissions).length === 0;
}
