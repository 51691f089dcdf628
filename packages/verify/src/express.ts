// Express (4 and 5) / Connect-style middleware. Needs neither express nor @types/express: the
// request and response types below are the few members used, and Express's satisfy them.
import type { AccessTokenClaims } from './claims.js';
import { authenticate, checkPermission, checkRole, nonEmpty, type AuthOptions, type Denial } from './http.js';
import type { Verifier } from './verifier.js';

declare global {
  // Merges into @types/express's `Express.Request` when it is installed; harmless otherwise.
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** The verified access token's claims, set by `expressAuth` (undefined on routes without it). */
      auth?: AccessTokenClaims;
    }
  }
}

export interface AuthRequest {
  headers: { authorization?: string | string[] | undefined };
  auth?: AccessTokenClaims;
}

export interface AuthResponse {
  statusCode: number;
  setHeader(name: string, value: string): unknown;
  end(body: string): unknown;
}

export type NextFunction = (err?: unknown) => void;
export type AuthMiddleware = (req: AuthRequest, res: AuthResponse, next: NextFunction) => void;
export type ExpressAuthOptions = AuthOptions;

function deny(res: AuthResponse, d: Denial): void {
  res.statusCode = d.status;
  for (const [name, value] of Object.entries(d.headers)) res.setHeader(name, value);
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.end(JSON.stringify(d.body));
}

/**
 * Requires a valid Tessera access token (`Authorization: Bearer …`) and puts its claims on
 * `req.auth`. Otherwise 401 `{error: 'unauthorized' | 'invalid_token', message}` with
 * `WWW-Authenticate: Bearer …`, or 503 `{error: 'service_unavailable'}` if the JWKS cannot be fetched.
 */
export function expressAuth(verifier: Verifier, opts: ExpressAuthOptions = {}): AuthMiddleware {
  return function tesseraAuth(req, res, next) {
    authenticate(verifier, req.headers.authorization, opts).then(
      (result) => {
        if ('denial' in result) return deny(res, result.denial);
        req.auth = result.claims;
        next();
      },
      (err: unknown) => next(err),
    );
  };
}

/** A middleware that passes the request on unless `check` denies its claims. */
function guard(check: (claims: AccessTokenClaims | undefined) => Denial | null): AuthMiddleware {
  return function tesseraGuard(req, res, next) {
    const denial = check(req.auth);
    if (denial) deny(res, denial);
    else next();
  };
}

/** After `expressAuth`: the token must have AT LEAST ONE of `roles`; 403 `{error: 'forbidden'}` otherwise. */
export function expressRequireRole(...roles: string[]): AuthMiddleware {
  nonEmpty('expressRequireRole', roles);
  return guard((claims) => checkRole(claims, roles));
}

/** After `expressAuth`: the token must grant EVERY one of `permissions` (`*`, `resource:*` count); 403 otherwise. */
export function expressRequirePermission(...permissions: string[]): AuthMiddleware {
  nonEmpty('expressRequirePermission', permissions);
  return guard((claims) => checkPermission(claims, permissions));
}
