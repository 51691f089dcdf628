import { createLocalJWKSet, createRemoteJWKSet, decodeJwt, importJWK, jwtVerify, type JSONWebKeySet, type JWK } from 'jose';
import { AppError, OAuthError, type FieldError } from '../../errors.js';
import type { Clock } from '../../infra/clock.js';
import type { Database } from '../../infra/db/client.js';
import type { AuditEventType } from '../audit/events.js';
import type { AuditService } from '../audit/service.js';
import type { SessionService } from '../sessions/service.js';
import { redirectUriProblem } from './redirect-uris.js';
import * as repo from './repo.js';
import { DUMMY_HASH, hashSecret, hashesEqual, newClientId, newSecret } from './secrets.js';
import type { ClientRow } from './tables.js';

export const CLIENT_TYPES = ['public', 'confidential'] as const;
export type ClientType = (typeof CLIENT_TYPES)[number];
export const AUTH_METHODS = ['none', 'client_secret_basic', 'client_secret_post', 'private_key_jwt'] as const;
export type AuthMethod = (typeof AUTH_METHODS)[number];
/**
 * The grants a client may be registered with. Tessera's tokens always name a user, so the machine-to-machine
 * `client_credentials` grant is not offered: registering it is refused with a field error, and the token
 * endpoint answers it `unsupported_grant_type`.
 */
export const GRANT_TYPES = ['authorization_code', 'refresh_token', 'password'] as const;
export const STANDARD_SCOPES = ['openid', 'profile', 'email', 'offline_access'] as const;
/** The permission of /admin/clients (held by `admin` through `*`). */
export const CLIENTS_PERMISSION = 'clients:manage';
/** RFC 7523 §2.2. */
export const JWT_BEARER_ASSERTION = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** Asymmetric algorithms only: an assertion is signed with the client's private key, never a shared secret. */
export const ASSERTION_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];
/** An assertion may live this long at most (its `exp`, from now): a captured one is soon useless, and its `jti` kept briefly. */
export const MAX_ASSERTION_SECONDS = 300;
const CLOCK_TOLERANCE_SECONDS = 30;
export const MAX_OVERLAP_SECONDS = 30 * 86400;
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]{1,64}$/;
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

export interface Actor {
  id: string;
  ip: string | null;
  userAgent: string | null;
}

/** What a client is registered with (camelCase; the admin API and the CLI map their fields to this). */
export interface ClientInput {
  name: string;
  type: ClientType;
  tokenEndpointAuthMethod?: AuthMethod | undefined;
  redirectUris?: string[] | undefined;
  postLogoutRedirectUris?: string[] | undefined;
  grantTypes?: string[] | undefined;
  scopes?: string[] | undefined;
  firstParty?: boolean | undefined;
  accessTokenSeconds?: number | null | undefined;
  refreshTokenDays?: number | null | undefined;
  jwks?: unknown;
  jwksUri?: string | null | undefined;
  backchannelLogoutUri?: string | null | undefined;
}

/** A change: any member but the type (a public client does not become confidential: register another one). */
export type ClientPatch = Partial<Omit<ClientInput, 'type'>>;

export interface ClientView extends ClientRow {
  /** Secrets that authenticate the client now (the current one and those in their overlap), without their values. */
  secrets: Array<{ createdAt: Date; expiresAt: Date | null }>;
}

/** What the token endpoint knows of the client that authenticated. */
export interface AuthenticatedClient {
  clientId: string;
  firstParty: boolean;
  grantTypes: string[];
  scopes: string[];
  accessTokenSeconds: number | null;
  refreshTokenDays: number | null;
}

/** The client credentials of a token request, as the transport found them (clients/client-auth.ts). */
export type ClientCredentials =
  | { method: 'client_secret_basic' | 'client_secret_post'; clientId: string; secret: string }
  | { method: 'none'; clientId: string }
  | { method: 'private_key_jwt'; clientId: string | undefined; assertion: string };

export interface ClientServiceDeps {
  db: Database;
  clock: Clock;
  audit: Pick<AuditService, 'record'>;
  /** Takes the RBAC lock and requires `permission` of the actor as stored now (rbac `actingAs`); null = the CLI. */
  acting: (tx: Database, actorId: string | null, permission: string) => Promise<unknown>;
  /** Ends the sessions of a deleted client (their refresh tokens would be unusable anyway). */
  sessions: Pick<SessionService, 'revokeByClient'>;
  /** Where private_key_jwt assertions may be addressed (`aud`): the token endpoint's URL and the issuer. */
  assertionAudiences: string[];
}

const invalidClient = () => new OAuthError('invalid_client', 'Client authentication failed.');

function problem(field: string, message: string): AppError {
  return new AppError('validation_failed', `${field} ${message}`, [{ field, message }]);
}

function list(field: string, values: string[] | undefined, max: number, check: (v: string) => string | null): string[] {
  const unique = [...new Set(values ?? [])];
  if (unique.length > max) throw problem(field, `has more than ${max} entries`);
  const details: FieldError[] = [];
  for (const v of unique) {
    const why = check(v);
    if (why) details.push({ field, message: `${JSON.stringify(v.slice(0, 200))} ${why}` });
  }
  if (details.length) throw new AppError('validation_failed', details.map((d) => d.message).join('; '), details);
  return unique;
}

function httpsUri(field: string, v: string | null | undefined): string | null {
  if (v === undefined || v === null || v === '') return null;
  try {
    const u = new URL(v);
    if (u.protocol !== 'https:' || u.username || u.password || v.includes('#') || v.length > 2048) throw new Error('bad');
    return v;
  } catch {
    throw problem(field, 'must be an https URL without user info or fragment');
  }
}

async function checkJwks(jwks: unknown): Promise<JSONWebKeySet> {
  const keys = (jwks as { keys?: unknown } | null)?.keys;
  if (typeof jwks !== 'object' || jwks === null || !Array.isArray(keys) || keys.length === 0 || keys.length > 10) {
    throw problem('jwks', 'must be a JWK Set with 1 to 10 keys ({"keys": [...]})');
  }
  if (JSON.stringify(jwks).length > 20_000) throw problem('jwks', 'is too large');
  for (const key of keys as unknown[]) {
    if (typeof key !== 'object' || key === null) throw problem('jwks', 'has a key that is not a JSON object');
    const jwk = key as JWK;
    if (!['RSA', 'EC', 'OKP'].includes(String(jwk.kty))) throw problem('jwks', 'takes public RSA, EC or OKP keys only');
    if (PRIVATE_JWK_MEMBERS.some((m) => m in jwk)) throw problem('jwks', 'has a private or symmetric key member: register the public keys only');
    try {
      await importJWK({
        ...jwk,
        alg: jwk.alg ?? (jwk.kty === 'RSA' ? 'RS256' : jwk.kty === 'OKP' ? 'EdDSA' : jwk.crv === 'P-384' ? 'ES384' : jwk.crv === 'P-521' ? 'ES512' : 'ES256'),
      });
    } catch {
      throw problem('jwks', 'has a key that cannot be read');
    }
  }
  return { keys: keys as JWK[] };
}

type Validated = Omit<repo.NewClient, 'clientId' | 'createdAt' | 'updatedAt'>;

/** Checks a whole registration (a new one, or an existing one with a patch applied). */
async function validate(c: ClientInput): Promise<Validated> {
  const name = c.name.trim();
  if (!name || name.length > 200) throw problem('name', 'must be 1 to 200 characters');
  if (!CLIENT_TYPES.includes(c.type)) throw problem('type', 'must be public or confidential');
  const method: AuthMethod = c.tokenEndpointAuthMethod ?? (c.type === 'public' ? 'none' : 'client_secret_basic');
  if (!AUTH_METHODS.includes(method)) throw problem('token_endpoint_auth_method', `must be one of ${AUTH_METHODS.join(', ')}`);
  if (c.type === 'public' && method !== 'none') throw problem('token_endpoint_auth_method', 'of a public client is none (it cannot keep a secret)');
  if (c.type === 'confidential' && method === 'none') throw problem('token_endpoint_auth_method', 'of a confidential client cannot be none');
  const redirectUris = list('redirect_uris', c.redirectUris, 20, redirectUriProblem);
  const postLogoutRedirectUris = list('post_logout_redirect_uris', c.postLogoutRedirectUris, 20, redirectUriProblem);
  const grantTypes = list('grant_types', c.grantTypes ?? ['authorization_code', 'refresh_token'], 10, (g) =>
    g === 'client_credentials'
      ? 'is not supported: Tessera issues tokens for users only'
      : (GRANT_TYPES as readonly string[]).includes(g)
        ? null
        : `is not one of ${GRANT_TYPES.join(', ')}`,
  );
  if (grantTypes.length === 0) throw problem('grant_types', 'must name at least one grant');
  const firstParty = c.firstParty ?? false;
  if (grantTypes.includes('password') && !firstParty) throw problem('grant_types', 'may include password only for a first-party client (RFC 9700 §2.4)');
  if (grantTypes.includes('authorization_code') && redirectUris.length === 0)
    throw problem('redirect_uris', 'must have at least one entry for the authorization_code grant');
  const scopes = list('scopes', c.scopes ?? ['openid', 'profile', 'email'], 50, (s) => (SCOPE_TOKEN.test(s) ? null : 'is not a scope token (RFC 6749 §3.3)'));
  const accessTokenSeconds = c.accessTokenSeconds ?? null;
  if (accessTokenSeconds !== null && (!Number.isInteger(accessTokenSeconds) || accessTokenSeconds < 60 || accessTokenSeconds > 86400)) {
    throw problem('access_token_seconds', 'must be an integer from 60 to 86400');
  }
  const refreshTokenDays = c.refreshTokenDays ?? null;
  if (refreshTokenDays !== null && (!Number.isInteger(refreshTokenDays) || refreshTokenDays < 1 || refreshTokenDays > 3650)) {
    throw problem('refresh_token_days', 'must be an integer from 1 to 3650');
  }
  const jwksUri = httpsUri('jwks_uri', c.jwksUri);
  const jwks = c.jwks === undefined || c.jwks === null ? null : await checkJwks(c.jwks);
  if (method === 'private_key_jwt' && (jwks === null) === (jwksUri === null))
    throw problem('jwks', 'or jwks_uri (exactly one) is required for private_key_jwt');
  if (c.type === 'public' && (jwks || jwksUri)) throw problem('jwks', 'is for confidential clients with private_key_jwt');
  return {
    name,
    type: c.type,
    tokenEndpointAuthMethod: method,
    redirectUris,
    postLogoutRedirectUris,
    grantTypes,
    scopes,
    firstParty,
    accessTokenSeconds,
    refreshTokenDays,
    jwks,
    jwksUri,
    backchannelLogoutUri: httpsUri('backchannel_logout_uri', c.backchannelLogoutUri),
  };
}

const usesSecret = (c: Pick<ClientRow, 'tokenEndpointAuthMethod'>) =>
  c.tokenEndpointAuthMethod === 'client_secret_basic' || c.tokenEndpointAuthMethod === 'client_secret_post';

const toInput = (c: ClientRow): ClientInput => ({
  name: c.name,
  type: c.type as ClientType,
  tokenEndpointAuthMethod: c.tokenEndpointAuthMethod as AuthMethod,
  redirectUris: c.redirectUris,
  postLogoutRedirectUris: c.postLogoutRedirectUris,
  grantTypes: c.grantTypes,
  scopes: c.scopes,
  firstParty: c.firstParty,
  accessTokenSeconds: c.accessTokenSeconds,
  refreshTokenDays: c.refreshTokenDays,
  jwks: c.jwks,
  jwksUri: c.jwksUri,
  backchannelLogoutUri: c.backchannelLogoutUri,
});

const authenticated = (c: ClientRow): AuthenticatedClient => ({
  clientId: c.clientId,
  firstParty: c.firstParty,
  grantTypes: c.grantTypes,
  scopes: c.scopes,
  accessTokenSeconds: c.accessTokenSeconds,
  refreshTokenDays: c.refreshTokenDays,
});

export type ClientService = ReturnType<typeof createClientService>;

/**
 * The OAuth client registry and the authentication of clients at the token
 * endpoint (docs/clients.md). Every change is audited with its actor.
 */
export function createClientService(deps: ClientServiceDeps) {
  const { db, clock, audit } = deps;
  const remoteKeys = new Map<string, ReturnType<typeof createRemoteJWKSet>>();

  const record = (tx: Database, actor: Actor | null, type: AuditEventType, clientId: string, details: Record<string, string | number | boolean> = {}) =>
    audit.record(tx, {
      userId: null,
      type,
      ip: actor?.ip ?? null,
      userAgent: actor?.userAgent ?? null,
      details: { actor: actor?.id ?? 'cli', client: clientId, ...details },
    });

  async function view(tx: Database, c: ClientRow): Promise<ClientView> {
    const secrets = await repo.liveSecrets(tx, c.clientId, clock.now());
    return { ...c, secrets: secrets.map((s) => ({ createdAt: s.createdAt, expiresAt: s.expiresAt })) };
  }

  function keySet(c: ClientRow) {
    if (c.jwks) return createLocalJWKSet(c.jwks as JSONWebKeySet);
    const uri = c.jwksUri as string;
    const key = `${c.clientId} ${uri}`;
    let set = remoteKeys.get(key);
    if (!set) remoteKeys.set(key, (set = createRemoteJWKSet(new URL(uri), { timeoutDuration: 3000, cooldownDuration: 30_000, cacheMaxAge: 600_000 })));
    return set;
  }

  async function verifyAssertion(assertion: string, claimedId: string | undefined): Promise<ClientRow> {
    let sub: unknown;
    try {
      sub = decodeJwt(assertion).sub;
    } catch {
      throw invalidClient();
    }
    if (typeof sub !== 'string' || sub.length > 256 || (claimedId !== undefined && claimedId !== sub)) throw invalidClient();
    const client = await repo.findClient(db, sub);
    if (!client || client.tokenEndpointAuthMethod !== 'private_key_jwt') throw invalidClient();
    const now = clock.now();
    let payload;
    try {
      ({ payload } = await jwtVerify(assertion, keySet(client), {
        issuer: client.clientId,
        subject: client.clientId,
        audience: deps.assertionAudiences,
        algorithms: ASSERTION_ALGORITHMS,
        requiredClaims: ['exp', 'jti'],
        currentDate: now,
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
      }));
    } catch {
      throw invalidClient();
    }
    const exp = payload.exp as number;
    const jti = payload.jti;
    if (exp > now.getTime() / 1000 + MAX_ASSERTION_SECONDS + CLOCK_TOLERANCE_SECONDS || typeof jti !== 'string' || jti.length === 0 || jti.length > 256)
      throw invalidClient();
    // Kept until its exp (plus the tolerance a late replay would get): each assertion authenticates once.
    const keepUntil = new Date((exp + CLOCK_TOLERANCE_SECONDS) * 1000);
    if (!(await repo.useAssertion(db, client.clientId, jti, keepUntil, now))) throw invalidClient();
    return client;
  }

  return {
    async list(): Promise<Array<ClientRow & { liveSecrets: number }>> {
      const [clients, counts] = await Promise.all([repo.listClients(db), repo.liveSecretCounts(db, clock.now())]);
      return clients.map((c) => ({ ...c, liveSecrets: counts.get(c.clientId) ?? 0 }));
    },

    /** A registered client, or null (the authorization and logout endpoints' lookup). */
    find: (clientId: string): Promise<ClientRow | null> => repo.findClient(db, clientId),

    async get(clientId: string): Promise<ClientView> {
      const c = await repo.findClient(db, clientId);
      if (!c) throw new AppError('client_not_found');
      return view(db, c);
    },

    /** Registers a client; a confidential client with a secret method gets its first secret, returned here once. */
    async create(actor: Actor | null, input: ClientInput): Promise<{ client: ClientView; secret: string | null }> {
      const v = await validate(input);
      return db.transaction(async (tx) => {
        await deps.acting(tx, actor?.id ?? null, CLIENTS_PERMISSION);
        const now = clock.now();
        const row = await repo.insertClient(tx, { ...v, clientId: newClientId(), createdAt: now, updatedAt: now });
        const secret = usesSecret(row) ? newSecret() : null;
        if (secret) await repo.insertSecret(tx, row.clientId, hashSecret(secret), now);
        await record(tx, actor, 'client_created', row.clientId, {
          type: row.type,
          method: row.tokenEndpointAuthMethod,
          grants: row.grantTypes.join(' '),
          first_party: row.firstParty,
        });
        return { client: await view(tx, row), secret };
      });
    },

    /** Changes a client (not its type or id); a change to a secret method gives a first secret (returned once). */
    async update(actor: Actor | null, clientId: string, patch: ClientPatch): Promise<{ client: ClientView; secret: string | null }> {
      return db.transaction(async (tx) => {
        await deps.acting(tx, actor?.id ?? null, CLIENTS_PERMISSION);
        const current = await repo.lockClient(tx, clientId);
        if (!current) throw new AppError('client_not_found');
        const defined = Object.fromEntries(Object.entries(patch).filter(([, value]) => value !== undefined)) as ClientPatch;
        const v = await validate({ ...toInput(current), ...defined });
        const now = clock.now();
        const row = (await repo.updateClient(tx, clientId, { ...v, updatedAt: now })) as ClientRow;
        let secret: string | null = null;
        if (!usesSecret(row)) {
          // A client moved to private_key_jwt keeps no secret that would still authenticate it.
          await repo.expireCurrentSecret(tx, clientId, now);
          await repo.capOverlaps(tx, clientId, now);
        } else if ((await repo.liveSecrets(tx, clientId, now)).length === 0) {
          secret = newSecret();
          await repo.insertSecret(tx, clientId, hashSecret(secret), now);
        }
        await record(tx, actor, 'client_updated', clientId, { fields: Object.keys(defined).sort().join(' ') });
        return { client: await view(tx, row), secret };
      });
    },

    /**
     * A new current secret, returned once. The previous one keeps working for
     * `overlapSeconds` (0: not at all), so deployments can switch without downtime;
     * an earlier overlap is never extended. Rotations of one client run one after
     * the other (row lock): after parallel rotations exactly one secret is current.
     */
    async rotateSecret(actor: Actor | null, clientId: string, overlapSeconds: number): Promise<{ secret: string; previousValidUntil: Date | null }> {
      if (!Number.isInteger(overlapSeconds) || overlapSeconds < 0 || overlapSeconds > MAX_OVERLAP_SECONDS) {
        throw problem('overlap_seconds', `must be an integer from 0 to ${MAX_OVERLAP_SECONDS}`);
      }
      return db.transaction(async (tx) => {
        await deps.acting(tx, actor?.id ?? null, CLIENTS_PERMISSION);
        const client = await repo.lockClient(tx, clientId);
        if (!client) throw new AppError('client_not_found');
        if (!usesSecret(client)) throw new AppError('client_has_no_secret');
        const now = clock.now();
        const until = new Date(now.getTime() + overlapSeconds * 1000);
        await repo.deleteExpiredSecrets(tx, clientId, now);
        await repo.capOverlaps(tx, clientId, until);
        const previous = await repo.expireCurrentSecret(tx, clientId, until);
        const secret = newSecret();
        await repo.insertSecret(tx, clientId, hashSecret(secret), now);
        await record(tx, actor, 'client_secret_rotated', clientId, { overlap_seconds: overlapSeconds });
        return { secret, previousValidUntil: previous && overlapSeconds > 0 ? until : null };
      });
    },

    /** The back-channel logout URIs of those of `clientIds` that registered one (read in `tx`). */
    backchannelUris: (tx: Database, clientIds: string[]): Promise<Map<string, string>> => repo.backchannelUris(tx, clientIds),

    /** Deletes a client, its secrets, and ends the sessions it holds. */
    async delete(actor: Actor | null, clientId: string): Promise<void> {
      await db.transaction(async (tx) => {
        await deps.acting(tx, actor?.id ?? null, CLIENTS_PERMISSION);
        // Its sessions end first, while the client (and its back-channel logout URI) is still there to be told.
        const sessions = await deps.sessions.revokeByClient(clientId, 'client_deleted', tx);
        if (!(await repo.deleteClient(tx, clientId))) throw new AppError('client_not_found');
        await record(tx, actor, 'client_deleted', clientId, { sessions });
      });
    },

    /**
     * Authenticates the client of a token request (RFC 6749 §2.3, RFC 7523). Every
     * failure is the same 401 `invalid_client`, and an unknown client costs the same
     * hash comparison as a wrong secret: the answer does not tell whether a client exists.
     */
    async authenticate(creds: ClientCredentials): Promise<AuthenticatedClient> {
      if (creds.method === 'private_key_jwt') return authenticated(await verifyAssertion(creds.assertion, creds.clientId));
      const client = creds.clientId.length <= 256 ? await repo.findClient(db, creds.clientId) : null;
      if (creds.method === 'none') {
        if (!client || client.type !== 'public') throw invalidClient();
        return authenticated(client);
      }
      const presented = hashSecret(creds.secret);
      // The secrets are read for an unknown id too (none come back): the same queries either way.
      const live = creds.clientId.length <= 256 ? await repo.liveSecrets(db, creds.clientId, clock.now()) : [];
      const hashes = client && usesSecret(client) ? live.map((s) => s.secretHash) : [];
      // Every live secret is compared (no early exit), and a dummy when there is none.
      let ok = false;
      for (const h of hashes.length ? hashes : [DUMMY_HASH]) ok = hashesEqual(presented, h) || ok;
      if (!client || !ok || client.type !== 'confidential' || hashes.length === 0) throw invalidClient();
      return authenticated(client);
    },
  };
}
