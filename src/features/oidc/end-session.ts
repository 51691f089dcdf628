/**
 * RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): `id_token_hint` (our own ID
 * token; an expired one is accepted, as the specification intends), `client_id`,
 * `post_logout_redirect_uri` (exactly one of the client's registered ones) and `state`. The
 * routes show a confirmation first: only its POST signs out.
 */
import { decodeJwt, errors as joseErrors, jwtVerify, type JWTHeaderParameters } from 'jose';
import type { ErrorCode } from '../../errors.js';
import type { Database } from '../../infra/db/client.js';
import type { KeyRing } from '../../infra/keys.js';
import type { AuditService } from '../audit/service.js';
import type { ClientMeta } from '../sessions/service.js';
import type { RawParams } from './authorization-request.js';
import type { BrowserSession, BrowserSessions } from './browser-session.js';

export interface LogoutClient {
  clientId: string;
  name: string;
  postLogoutRedirectUris: string[];
}

export interface EndSessionDeps {
  db: Database;
  keys: KeyRing;
  issuer: string;
  findClient: (clientId: string) => Promise<LogoutClient | null>;
  browserSessions: BrowserSessions;
  audit: Pick<AuditService, 'record'>;
}

export type LogoutRequest =
  | { ok: true; client: LogoutClient | null; redirectUri: string | null; state: string | null; fields: Record<string, string> }
  | { ok: false; code: ErrorCode; message: string };

const str = (v: string | string[] | undefined) => (typeof v === 'string' && v !== '' && v.length <= 4096 ? v : undefined);

export function createEndSession(deps: EndSessionDeps) {
  const { keys } = deps;
  const keyOf = (header: JWTHeaderParameters) => {
    const key = header.kid ? keys.byKid(header.kid) : undefined;
    if (!key || key.alg !== header.alg) throw new joseErrors.JWKSNoMatchingKey();
    return key.publicKey;
  };

  /** The audience of one of our ID tokens, its signature checked (its expiry not: a logout hint may be old); null otherwise. */
  async function hintAudience(hint: string): Promise<string | null> {
    try {
      const iat = decodeJwt(hint).iat;
      if (typeof iat !== 'number') return null;
      // Checked as of its issue time: expired hints are accepted, forged or foreign ones are not.
      const { payload } = await jwtVerify(hint, keyOf, { algorithms: keys.algorithms(), issuer: deps.issuer, typ: 'JWT', currentDate: new Date(iat * 1000) });
      return typeof payload.aud === 'string' ? payload.aud : Array.isArray(payload.aud) && payload.aud.length === 1 ? (payload.aud[0] ?? null) : null;
    } catch {
      // not a token we signed (or malformed): the request is refused by the caller
      return null;
    }
  }

  return {
    async read(params: RawParams): Promise<LogoutRequest> {
      const hint = str(params.id_token_hint);
      let clientId = str(params.client_id) ?? null;
      const redirectUri = str(params.post_logout_redirect_uri) ?? null;
      const state = str(params.state) ?? null;
      if (hint !== undefined) {
        const aud = await hintAudience(hint);
        if (!aud) return { ok: false, code: 'logout_request_invalid', message: 'The id_token_hint is not an ID token issued here.' };
        if (clientId !== null && clientId !== aud)
          return { ok: false, code: 'logout_request_invalid', message: 'client_id is not the audience of the id_token_hint.' };
        clientId = aud;
      }
      const client = clientId !== null ? await deps.findClient(clientId) : null;
      if (clientId !== null && !client) return { ok: false, code: 'logout_request_invalid', message: 'No application is registered with this client_id.' };
      if (redirectUri !== null && (!client || !client.postLogoutRedirectUris.includes(redirectUri)))
        return {
          ok: false,
          code: 'logout_request_invalid',
          message: 'The post_logout_redirect_uri is not one registered for this application (name the application with client_id or id_token_hint).',
        };
      const fields: Record<string, string> = {};
      if (client) fields.client_id = client.clientId;
      if (redirectUri) fields.post_logout_redirect_uri = redirectUri;
      if (state) fields.state = state;
      return { ok: true, client, redirectUri, state, fields };
    },

    /** Ends the browser session and its client sessions; where the browser goes next (null: the signed-out page). */
    async end(request: Extract<LogoutRequest, { ok: true }>, sso: BrowserSession | null, meta: ClientMeta): Promise<string | null> {
      if (sso) {
        await deps.db.transaction(async (tx) => {
          const ended = await deps.browserSessions.end(sso, 'end_session', tx);
          await deps.audit.record(tx, {
            userId: sso.userId,
            type: 'end_session',
            ip: meta.ip,
            userAgent: meta.userAgent,
            details: { sessions: ended.length, ...(request.client ? { client: request.client.clientId } : {}) },
          });
        });
      }
      if (!request.redirectUri) return null;
      const url = new URL(request.redirectUri);
      if (request.state) url.searchParams.set('state', request.state);
      return url.href;
    },
  };
}

export type EndSession = ReturnType<typeof createEndSession>;
