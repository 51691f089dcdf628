import type { FastifyRequest } from 'fastify';
import { OAuthError } from '../../errors.js';
import type { ClientAuthenticator, ClientAuthFields } from '../tokens/token-client.js';
import { JWT_BEARER_ASSERTION, type ClientCredentials, type ClientService } from './service.js';

export interface FoundCredentials {
  /** Null: the request names no client (the implicit first-party client, as before the registry). */
  credentials: ClientCredentials | null;
}

/** Thrown for a malformed Basic header: the same 401 as wrong credentials. */
const invalidClient = () => new OAuthError('invalid_client', 'Client authentication failed.');
const oneMethod = () => new OAuthError('invalid_request', 'Authenticate the client one way only: HTTP Basic, client_secret in the body, or client_assertion.');

/** RFC 6749 §2.3.1: id and secret are form-urlencoded, joined by ":", then base64-encoded. */
function parseBasic(header: string): { clientId: string; secret: string } {
  const match = /^Basic\s+([A-Za-z0-9+/]+={0,2})\s*$/i.exec(header);
  if (!match?.[1]) throw invalidClient();
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon === -1) throw invalidClient();
  try {
    const formDecode = (s: string) => decodeURIComponent(s.replace(/\+/g, ' '));
    return { clientId: formDecode(decoded.slice(0, colon)), secret: formDecode(decoded.slice(colon + 1)) };
  } catch {
    throw invalidClient();
  }
}

/** Swagger UI's password flow sends `Basic base64(":")` when its client id and secret fields are left empty: no client, as before the registry. */
const EMPTY_BASIC = /^Basic\s+Og==\s*$/i;

/**
 * Finds how the client of a token request authenticates: `client_secret_basic`
 * (Authorization: Basic), `client_secret_post` (client_id + client_secret),
 * `private_key_jwt` (client_assertion, RFC 7523) or `none` (a public client's
 * client_id alone). More than one method in one request is `invalid_request`
 * (RFC 6749 §2.3). Empty `client_id` and `client_secret` count as absent, as
 * before the registry existed (some tools send them empty).
 */
export function findClientCredentials(request: FastifyRequest, body: ClientAuthFields): FoundCredentials {
  const header = request.headers.authorization;
  const basic = header !== undefined && /^Basic(\s|$)/i.test(header) && !EMPTY_BASIC.test(header);
  const clientId = body.client_id === '' ? undefined : body.client_id;
  const secret = body.client_secret === '' && clientId === undefined ? undefined : body.client_secret;
  const assertion = body.client_assertion !== undefined || body.client_assertion_type !== undefined;
  if ([basic, secret !== undefined, assertion].filter(Boolean).length > 1) throw oneMethod();
  if (basic) {
    const parsed = parseBasic(header);
    if (parsed.clientId === '') throw invalidClient();
    if (clientId !== undefined && clientId !== parsed.clientId)
      throw new OAuthError('invalid_request', 'client_id in the body is not the client of the Authorization header.');
    return { credentials: { method: 'client_secret_basic', ...parsed } };
  }
  if (secret !== undefined) {
    if (clientId === undefined) throw new OAuthError('invalid_request', 'Missing parameter: client_id (client_secret_post sends both).');
    return { credentials: { method: 'client_secret_post', clientId, secret } };
  }
  if (assertion) {
    if (body.client_assertion_type !== JWT_BEARER_ASSERTION) throw new OAuthError('invalid_request', `client_assertion_type must be ${JWT_BEARER_ASSERTION}.`);
    if (!body.client_assertion) throw new OAuthError('invalid_request', 'Missing parameter: client_assertion.');
    return { credentials: { method: 'private_key_jwt', clientId, assertion: body.client_assertion } };
  }
  if (clientId !== undefined) return { credentials: { method: 'none', clientId } };
  return { credentials: null };
}

/** The token endpoint's client authentication (tokens/token-client.ts): the credentials of the request, checked against the registry. */
export function createClientAuthenticator(clients: Pick<ClientService, 'authenticate'>): ClientAuthenticator {
  return async (request, body) => {
    const { credentials } = findClientCredentials(request, body);
    return credentials ? clients.authenticate(credentials) : null;
  };
}
