import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IntrospectionClient } from '../../config/index.js';
import { AppError } from '../../errors.js';
import type { SessionService } from '../sessions/service.js';
import { grantedScopes } from '../sessions/scopes.js';

/** RFC 7662 §2.2. An inactive token is `{active: false}` and nothing else: no reason is given. */
export type IntrospectionResult =
  | { active: false }
  | {
      active: true;
      token_type: 'access_token' | 'refresh_token';
      sub: string;
      sid: string;
      iss: string;
      exp: number;
      iat?: number;
      aud?: string | string[];
      jti?: string;
      /** The registered client the token was issued to (absent: the implicit first-party client). */
      client_id?: string;
      /** Access tokens: the granted scopes, space-separated (the implicit first-party client's: `openid profile email`). */
      scope?: string;
      email?: string;
      email_verified?: boolean;
      roles?: string[];
      permissions?: string[];
      amr?: string[];
    };

/**
 * Who asks: a resource server of INTROSPECTION_CLIENTS (any token), or a registered
 * confidential client (only the tokens issued to itself; RFC 7662 §2.1, §4).
 */
export type Introspector = { kind: 'resource_server' } | { kind: 'client'; clientId: string };

export interface IntrospectionServiceDeps {
  sessions: Pick<SessionService, 'authenticate' | 'inspectRefresh'>;
  clients: IntrospectionClient[];
  issuer: string;
}

export type IntrospectionService = ReturnType<typeof createIntrospectionService>;

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
const INACTIVE = { active: false } as const;

type Found = { result: IntrospectionResult; clientId: string | null };

/**
 * Token introspection (RFC 7662) for resource servers that need revocation to
 * take effect at once: the same checks as an authenticated API call (signature,
 * claims, session live, user enabled), so one database read per call.
 */
export function createIntrospectionService(deps: IntrospectionServiceDeps) {
  const secrets = new Map(deps.clients.map((c) => [c.id, digest(c.secret)]));
  // Unknown client ids are compared against this, so they take as long as a wrong secret.
  const nobody = digest(randomBytes(32).toString('base64'));

  async function accessToken(token: string): Promise<Found | null> {
    try {
      const { token: t, session } = await deps.sessions.authenticate(token);
      return {
        clientId: session.clientId,
        result: {
          active: true,
          token_type: 'access_token',
          sub: t.sub,
          sid: t.sid,
          iss: t.iss,
          aud: t.aud,
          exp: t.exp,
          iat: t.iat,
          jti: t.jti,
          ...(t.client_id !== undefined ? { client_id: t.client_id } : {}),
          scope: [...grantedScopes(t)].join(' '),
          email: t.email,
          email_verified: t.email_verified,
          roles: t.roles,
          permissions: t.permissions,
          amr: t.amr,
        },
      };
    } catch (err) {
      // invalid_token / session_revoked; anything else (the database is down) is not an answer.
      if (err instanceof AppError) return null;
      throw err;
    }
  }

  async function refreshToken(token: string): Promise<Found | null> {
    const found = await deps.sessions.inspectRefresh(token);
    if (!found) return null;
    const { claims, session } = found;
    return {
      clientId: session.clientId,
      result: {
        active: true,
        token_type: 'refresh_token',
        sub: claims.sub,
        sid: claims.sid,
        iss: deps.issuer,
        aud: deps.issuer,
        exp: claims.exp,
        ...(claims.iat !== null ? { iat: claims.iat } : {}),
        ...(session.clientId !== null ? { client_id: session.clientId } : {}),
        // The scopes its session was granted (RFC 7662 §2.2), as its access tokens carry them.
        scope: [...grantedScopes({ ...(session.scope ? { scope: session.scope } : {}) })].join(' '),
      },
    };
  }

  return {
    /** Whether `id` names a client of INTROSPECTION_CLIENTS (the others authenticate as registered clients). */
    isConfigured: (id: string): boolean => secrets.has(id),

    /** Whether `id` and `secret` are a configured client; compares digests in constant time. */
    authenticateClient(id: string, secret: string): boolean {
      const expected = secrets.get(id);
      const same = timingSafeEqual(expected ?? nobody, digest(secret));
      return same && expected !== undefined;
    },

    /**
     * Access tokens first unless the hint says refresh_token (an unknown hint is ignored, RFC 7662 §2.1).
     * A registered client sees only its own tokens: any other is `{active: false}`, as if unknown.
     */
    async introspect(token: string, hint: string | undefined, caller: Introspector = { kind: 'resource_server' }): Promise<IntrospectionResult> {
      const order = hint === 'refresh_token' ? [refreshToken, accessToken] : [accessToken, refreshToken];
      for (const check of order) {
        const found = await check(token);
        if (!found) continue;
        if (caller.kind === 'client' && found.clientId !== caller.clientId) return INACTIVE;
        return found.result;
      }
      return INACTIVE;
    },
  };
}
