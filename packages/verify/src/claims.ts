/** The claims of a verified Tessera access token. */
export interface AccessTokenClaims {
  /** Issuer: Tessera's JWT_ISSUER (defaults to its PUBLIC_URL). */
  iss: string;
  /** Audience: Tessera's JWT_AUDIENCE. */
  aud: string | string[];
  /** The user id (a UUID). */
  sub: string;
  /** The session id (a UUID): one per signed-in device. */
  sid: string;
  /** Issued at / expires at, in seconds since the epoch. */
  iat: number;
  exp: number;
  /** Unique token id. */
  jti: string;
  /** The user's email address at the time the token was issued ('' if absent). */
  email: string;
  email_verified: boolean;
  /** The user's roles, e.g. ['user'] or ['admin']. */
  roles: string[];
  /** The flattened permissions of the roles; `*` means every permission. [] if the token has none. */
  permissions: string[];
  /** How the user authenticated: ['pwd'], or ['pwd', 'otp'] after a second factor. */
  amr: string[];
}

/** Whether `granted` covers `wanted`: an exact match, `*`, or a `resource:*` prefix (`orders:*` covers `orders:refund`). */
export function permits(granted: readonly string[], wanted: string): boolean {
  return granted.some((g) => g === '*' || g === wanted || (g.endsWith(':*') && wanted.startsWith(g.slice(0, -1))));
}

/** True if the token has AT LEAST ONE of `roles` (no roles given: false). Roles are exact names. */
export function hasRole(claims: Pick<AccessTokenClaims, 'roles'>, ...roles: string[]): boolean {
  return roles.some((r) => claims.roles.includes(r));
}

/**
 * True if the token grants EVERY one of `permissions` (no permissions given: true).
 * A granted `*` covers everything; a granted `orders:*` covers `orders:read`, `orders:refund`...
 */
export function hasPermission(claims: Pick<AccessTokenClaims, 'permissions'>, ...permissions: string[]): boolean {
  return permissions.every((p) => permits(claims.permissions, p));
}

/** The permissions in `permissions` that the token does not grant. */
export function missingPermissions(claims: Pick<AccessTokenClaims, 'permissions'>, ...permissions: string[]): string[] {
  return permissions.filter((p) => !permits(claims.permissions, p));
}
