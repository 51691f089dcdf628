/** What an access token says about its subject (README "Tokens"). */
export interface AccessClaims {
  sub: string;
  sid: string;
  email: string;
  email_verified: boolean;
  roles: string[];
  /** The flattened permissions of the roles (`*` = every permission). */
  permissions: string[];
  amr: string[];
  /** The registered OAuth client the token was issued to (RFC 9068 §2.2); absent for the implicit first-party client. */
  client_id?: string;
  /**
   * The scopes granted to that client, space-separated (RFC 9068 §2.2.3), e.g. "openid profile email".
   * Absent for the implicit first-party client, whose tokens carry every claim of the user.
   */
  scope?: string;
}

export interface VerifiedAccessToken extends AccessClaims {
  iss: string;
  aud: string | string[];
  iat: number;
  exp: number;
  jti: string;
}

export interface RefreshClaims {
  sub: string;
  sid: string;
  gen: number;
}

/** A refresh token that passed its signature and expiry checks. */
export interface VerifiedRefreshToken extends RefreshClaims {
  exp: number;
  iat: number | null;
}

export const ACCESS_TOKEN_TYP = 'at+jwt';
export const REFRESH_TOKEN_TYP = 'rt+jwt';
