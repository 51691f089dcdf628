/**
 * Pushed authorization requests (RFC 9126, docs/openid-provider.md "Pushed authorization requests"):
 * a client POSTs its authorization request to /auth/par (authenticated as at the token endpoint) and
 * sends the browser to /auth/authorize with only `client_id` and the `request_uri` it got back. The
 * parameters never travel through the browser; the request_uri works for 60 s, once, for that client.
 */
import { OAuthError, type ErrorCode } from '../../errors.js';
import type { Clock } from '../../infra/clock.js';
import type { Database } from '../../infra/db/client.js';
import { newOpaqueToken, sha256Hex } from '../../infra/opaque-token.js';
import { readAuthorizationRequest, type AuthorizeClient, type RawParams } from './authorization-request.js';
import * as repo from './repo.js';

export const REQUEST_URI_PREFIX = 'urn:ietf:params:oauth:request_uri:';
export const PUSHED_REQUEST_SECONDS = 60;

/** Members of a pushed request that authenticate the client: not part of the authorization request. */
const CLIENT_AUTH = new Set(['client_secret', 'client_assertion', 'client_assertion_type']);

export interface PushedRequestsDeps {
  db: Database;
  clock: Clock;
  findClient: (clientId: string) => Promise<AuthorizeClient | null>;
}

export type ResolvedRequest = { ok: true; params: RawParams } | { ok: false; code: ErrorCode; message: string };

export type PushedRequests = ReturnType<typeof createPushedRequests>;

export function createPushedRequests(deps: PushedRequestsDeps) {
  const { db, clock } = deps;
  return {
    /** POST /auth/par: validates the request as /auth/authorize would, keeps it, and names it. */
    async push(clientId: string, body: RawParams): Promise<{ request_uri: string; expires_in: number }> {
      const params: Record<string, string> = {};
      for (const [name, value] of Object.entries(body)) {
        if (CLIENT_AUTH.has(name) || value === undefined) continue;
        if (typeof value !== 'string') throw new OAuthError('invalid_request', `${name} is sent more than once.`);
        params[name] = value;
      }
      // RFC 9126 §2.1: a pushed request cannot itself point to another one.
      if (params.request_uri !== undefined) throw new OAuthError('invalid_request', 'request_uri cannot be pushed.');
      if (params.client_id !== undefined && params.client_id !== clientId)
        throw new OAuthError('invalid_request', 'client_id is not the client that authenticated.');
      params.client_id = clientId;
      const read = await readAuthorizationRequest(params, deps.findClient);
      if (!read.ok) {
        // RFC 9126 §2.3: answered here, in the token endpoint's error format (nothing goes to a redirect URI).
        if ('page' in read) throw new OAuthError('invalid_request', read.message);
        const code = read.error === 'invalid_scope' || read.error === 'unauthorized_client' ? read.error : 'invalid_request';
        throw new OAuthError(code, read.description);
      }
      const now = clock.now();
      const secret = newOpaqueToken();
      await repo.insertPushedRequest(db, {
        id: sha256Hex(secret),
        clientId,
        params,
        createdAt: now,
        expiresAt: new Date(now.getTime() + PUSHED_REQUEST_SECONDS * 1000),
      });
      return { request_uri: `${REQUEST_URI_PREFIX}${secret}`, expires_in: PUSHED_REQUEST_SECONDS };
    },

    /**
     * /auth/authorize: the parameters to use. Without `request_uri`, the ones given; with one, the
     * pushed ones (used up now), when it is live and was pushed by the `client_id` given; else an
     * error page (the pushed redirect URI is not known to be this client's, so nothing is redirected).
     */
    async resolve(params: RawParams): Promise<ResolvedRequest> {
      const uri = params.request_uri;
      if (uri === undefined) return { ok: true, params };
      const refused: ResolvedRequest = {
        ok: false,
        code: 'invalid_request_uri',
        message: 'This sign-in link is unknown, expired, already used, or belongs to another application. Go back to the application and start again.',
      };
      const clientId = params.client_id;
      if (typeof uri !== 'string' || !uri.startsWith(REQUEST_URI_PREFIX) || uri.length > REQUEST_URI_PREFIX.length + 100) return refused;
      if (typeof clientId !== 'string' || clientId === '' || clientId.length > 256)
        return { ok: false, code: 'unknown_client', message: 'The request names no client (client_id).' };
      const pushed = await repo.consumePushedRequest(db, sha256Hex(uri.slice(REQUEST_URI_PREFIX.length)), clientId, clock.now());
      return pushed ? { ok: true, params: pushed } : refused;
    },
  };
}
