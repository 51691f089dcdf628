/**
 * One OpenID Connect provider implementation, used by Google, Apple and every
 * generic provider of OIDC_PROVIDERS (their files only set defaults and quirks).
 *
 * - Endpoints come from `<issuer>/.well-known/openid-configuration` (fetched on
 *   first use, cached for a day, not cached when it fails), each overridable by
 *   configuration; with the authorization, token and JWKS URLs all configured,
 *   discovery is never fetched.
 * - Web: authorization code + PKCE S256 + state + nonce; the callback's `iss`
 *   (RFC 9207) must name this provider when present or announced; the code is exchanged
 *   with the client secret, and the ID token is verified: signature by a key of
 *   the provider's JWKS (asymmetric algorithms only; `jku`/`jwk`/`x5u` headers
 *   are ignored), `iss` = the issuer, `aud` = the web client id, `nonce` = the
 *   one sent, `exp`/`iat` against Tessera's clock with 60 s of skew.
 * - Native: the same checks, with `aud` ∈ every configured client id (web, iOS,
 *   Android) and the nonce the app sends, if any.
 */
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { OidcProviderConfig } from '../../../config/index.js';
import type { Clock } from '../../../infra/clock.js';
import { sha256Hex } from '../../../infra/opaque-token.js';
import { ProviderError, type AuthorizationRequest, type CodeExchange, type NativeToken, type Provider, type ProviderProfile } from '../provider.js';
import { isObject, requestJson, splitName, text, withQuery, type HttpOptions } from './oauth2-http.js';

/** Allowed ID-token signature algorithms: asymmetric only (an HMAC "signed" with the client secret is refused). */
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];
const SKEW_SECONDS = 60;
const DISCOVERY_TTL_MS = 24 * 60 * 60 * 1000;

export interface OidcQuirks {
  /** Other `iss` values the provider uses for the same issuer (Google: `accounts.google.com`). */
  issuerAliases?: string[];
  /** Apple answers with `form_post`. */
  responseMode?: 'query' | 'form_post';
  /** Whether the claims say the email is verified (default: `email_verified === true`). */
  emailVerified?: (claims: Record<string, unknown>) => boolean;
  /** The client secret to send (Apple: a fresh ES256 JWT); default: the configured one. */
  clientSecret?: () => Promise<string | null>;
  /** How to authenticate at the token endpoint; default: from discovery (`client_secret_basic` unless only `_post` is offered). */
  tokenAuthMethod?: 'client_secret_basic' | 'client_secret_post';
  /** Native tokens: Apple's SDK puts SHA-256(hex) of the app's raw nonce in the token. */
  hashedNativeNonce?: boolean;
  /** Names the provider posts to the callback (Apple's `user` on the first authorisation). */
  callbackNames?: (params: Record<string, string>) => { firstName: string | null; lastName: string | null };
}

interface Endpoints {
  authorization: string;
  token: string;
  jwks: string;
  userinfo: string | null;
  authMethods: string[] | null;
  /** RFC 9207: the provider names itself (`iss`) in every authorization response. */
  issParameter: boolean;
}

/** `email_verified` as OpenID Connect defines it: the JSON boolean true. */
const strictEmailVerified = (claims: Record<string, unknown>) => claims.email_verified === true;

/** The web client's id: the first of `clientIds` (the config reader always puts one there). */
export function webClientIdOf(config: OidcProviderConfig): string {
  const [id] = config.clientIds;
  if (id === undefined) throw new Error(`${config.displayName}: no client id configured`);
  return id;
}

export function createOidcProvider(config: OidcProviderConfig, http: HttpOptions, clock: Clock, quirks: OidcQuirks = {}): Provider {
  const name = config.displayName;
  const webClientId = webClientIdOf(config);
  const issuers = [config.issuer, ...(quirks.issuerAliases ?? [])];
  const emailVerified = quirks.emailVerified ?? strictEmailVerified;
  let discovered: { at: number; value: Promise<Endpoints> } | null = null;
  const jwksSets = new Map<string, JWTVerifyGetKey>();

  async function discover(): Promise<Endpoints> {
    const url = `${config.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
    const res = await requestJson(http, `${name} discovery`, url, { method: 'GET', headers: { accept: 'application/json' } });
    const doc = res.body;
    if (res.status !== 200 || !isObject(doc)) throw new ProviderError('discovery_failed', `${name} discovery: HTTP ${res.status}`, true);
    if (doc.issuer !== config.issuer) throw new ProviderError('discovery_failed', `${name} discovery: the document names another issuer`, true);
    const endpoint = (override: string | null, key: string): string | null => override ?? (typeof doc[key] === 'string' ? doc[key] : null);
    const authorization = endpoint(config.authorizationUrl, 'authorization_endpoint');
    const token = endpoint(config.tokenUrl, 'token_endpoint');
    const jwks = endpoint(config.jwksUrl, 'jwks_uri');
    if (!authorization || !token || !jwks) throw new ProviderError('discovery_failed', `${name} discovery: an endpoint is missing`, true);
    const methods = doc.token_endpoint_auth_methods_supported;
    return {
      authorization,
      token,
      jwks,
      userinfo: endpoint(config.userinfoUrl, 'userinfo_endpoint'),
      authMethods: Array.isArray(methods) ? methods.filter((m): m is string => typeof m === 'string') : null,
      issParameter: doc.authorization_response_iss_parameter_supported === true,
    };
  }

  /** The endpoints: configured, or discovered once (a failure is not cached: the next call retries). */
  async function endpoints(): Promise<Endpoints> {
    if (config.authorizationUrl && config.tokenUrl && config.jwksUrl) {
      return {
        authorization: config.authorizationUrl,
        token: config.tokenUrl,
        jwks: config.jwksUrl,
        userinfo: config.userinfoUrl,
        authMethods: null,
        issParameter: false,
      };
    }
    const now = clock.now().getTime();
    if (!discovered || now - discovered.at > DISCOVERY_TTL_MS) {
      const value = discover();
      discovered = { at: now, value };
      // Only forgets a failed discovery (retried next time); every caller awaiting `value` gets the error.
      value.catch(() => {
        if (discovered?.value === value) discovered = null;
      });
    }
    return discovered.value;
  }

  function keySet(url: string): JWTVerifyGetKey {
    let set = jwksSets.get(url);
    if (!set) {
      const remote = createRemoteJWKSet(new URL(url), { timeoutDuration: http.timeoutMs });
      // A key that is not in the set is the token's fault; failing to fetch the set is the provider's.
      set = async (header, token) => {
        try {
          return await remote(header, token);
        } catch (err) {
          if (err instanceof joseErrors.JWKSNoMatchingKey || err instanceof joseErrors.JWKSMultipleMatchingKeys) throw err;
          throw new ProviderError('jwks_unavailable', `${name}: its signing keys (JWKS) could not be fetched`, true);
        }
      };
      jwksSets.set(url, set);
    }
    return set;
  }

  /** Verifies an ID token; throws ProviderError `id_token_invalid` naming what is wrong (never echoing the token). */
  async function verifyIdToken(idToken: string, audiences: string[], nonceOk: (claim: unknown) => boolean): Promise<JWTPayload> {
    const invalid = (why: string) => new ProviderError('id_token_invalid', `The ${name} ID token ${why}.`);
    const jwksUrl = config.jwksUrl ?? (await endpoints()).jwks;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(idToken, keySet(jwksUrl), {
        issuer: issuers,
        audience: audiences,
        algorithms: ALGORITHMS,
        currentDate: clock.now(),
        clockTolerance: SKEW_SECONDS,
        requiredClaims: ['iss', 'aud', 'exp', 'iat', 'sub'],
      }));
    } catch (err) {
      if (err instanceof ProviderError) throw err;
      if (err instanceof joseErrors.JWTExpired) throw invalid('has expired');
      if (err instanceof joseErrors.JWTClaimValidationFailed) throw invalid(`has a wrong or missing "${err.claim}" claim`);
      if (err instanceof joseErrors.JWKSNoMatchingKey) throw invalid('is signed with a key the provider does not publish');
      if (err instanceof joseErrors.JWSSignatureVerificationFailed) throw invalid('has an invalid signature');
      if (err instanceof joseErrors.JOSEAlgNotAllowed) throw invalid('uses a signature algorithm that is not accepted');
      throw invalid('is malformed');
    }
    const now = Math.floor(clock.now().getTime() / 1000);
    if (typeof payload.iat !== 'number' || payload.iat > now + SKEW_SECONDS) throw invalid('is issued in the future');
    const aud = payload.aud;
    if (Array.isArray(aud) && aud.length > 1 && !(typeof payload.azp === 'string' && audiences.includes(payload.azp))) {
      throw invalid('has several audiences and no authorized party (azp) of ours');
    }
    if (typeof payload.sub !== 'string' || payload.sub === '' || payload.sub.length > 255) throw invalid('has no usable subject');
    if (!nonceOk(payload.nonce)) throw invalid('has a wrong or missing nonce');
    return payload;
  }

  function profileFrom(claims: Record<string, unknown>, names?: { firstName: string | null; lastName: string | null }): ProviderProfile {
    const split = splitName(claims.name);
    return {
      subject: claims.sub as string,
      email: text(claims.email),
      emailVerified: text(claims.email) !== null && emailVerified(claims),
      firstName: names?.firstName ?? text(claims.given_name) ?? split.firstName,
      lastName: names?.lastName ?? text(claims.family_name) ?? split.lastName,
    };
  }

  /** Fills in the email and names from the userinfo endpoint when the ID token carries none. */
  async function withUserinfo(claims: JWTPayload, accessToken: unknown, ep: Endpoints): Promise<Record<string, unknown>> {
    if (text(claims.email) || !ep.userinfo || typeof accessToken !== 'string') return claims;
    const res = await requestJson(http, `${name} userinfo`, ep.userinfo, {
      method: 'GET',
      headers: { accept: 'application/json', authorization: `Bearer ${accessToken}` },
    });
    if (res.status >= 500) throw new ProviderError('provider_error', `${name} userinfo: HTTP ${res.status}`, true);
    if (res.status !== 200 || !isObject(res.body)) throw new ProviderError('userinfo_failed', `${name} userinfo: HTTP ${res.status}`);
    // The userinfo answer is not signed: it only counts for the subject the verified ID token names.
    if (res.body.sub !== claims.sub) throw new ProviderError('userinfo_failed', `${name} userinfo: the answer is about another subject`);
    return { ...res.body, ...claims, email: res.body.email, email_verified: res.body.email_verified };
  }

  async function clientAuth(ep: Endpoints, body: URLSearchParams, headers: Record<string, string>): Promise<void> {
    const secret = quirks.clientSecret ? await quirks.clientSecret() : config.clientSecret;
    if (secret === null) {
      body.set('client_id', webClientId);
      return;
    }
    const method =
      quirks.tokenAuthMethod ??
      (ep.authMethods && !ep.authMethods.includes('client_secret_basic') && ep.authMethods.includes('client_secret_post')
        ? 'client_secret_post'
        : 'client_secret_basic');
    if (method === 'client_secret_post') {
      body.set('client_id', webClientId);
      body.set('client_secret', secret);
    } else {
      // RFC 6749 §2.3.1: each part form-encoded before Basic.
      const enc = (v: string) => encodeURIComponent(v).replace(/%20/g, '+');
      headers.authorization = `Basic ${Buffer.from(`${enc(webClientId)}:${enc(secret)}`).toString('base64')}`;
    }
  }

  return {
    id: config.id,
    displayName: name,
    responseMode: quirks.responseMode ?? 'query',
    emailLinking: config.emailLinking,
    nativeInput: 'id_token',

    async authorizationUrl(request: AuthorizationRequest): Promise<URL> {
      const params: Record<string, string> = {
        client_id: webClientId,
        response_type: 'code',
        redirect_uri: request.callbackUrl,
        scope: config.scopes,
        state: request.state,
        nonce: request.nonce,
        code_challenge: request.codeChallenge,
        code_challenge_method: 'S256',
      };
      if (quirks.responseMode === 'form_post') params.response_mode = 'form_post';
      return withQuery((await endpoints()).authorization, params);
    },

    async exchangeCode(exchange: CodeExchange): Promise<ProviderProfile> {
      const ep = await endpoints();
      // RFC 9207 (mix-up defence): an `iss` in the callback must be this provider's; a provider that
      // announces the parameter must send it.
      const iss = exchange.callbackParams.iss;
      if (iss !== undefined ? !issuers.includes(iss) : ep.issParameter) {
        throw new ProviderError(
          'issuer_mismatch',
          `The answer did not come from ${name} (RFC 9207 "iss" ${iss === undefined ? 'missing' : 'of another issuer'}).`,
        );
      }
      const body = new URLSearchParams({
        grant_type: 'authorization_code',
        code: exchange.code,
        redirect_uri: exchange.callbackUrl,
        code_verifier: exchange.codeVerifier,
      });
      const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
      await clientAuth(ep, body, headers);
      const res = await requestJson(http, `${name} token endpoint`, ep.token, { method: 'POST', headers, body: body.toString() });
      if (res.status >= 500) throw new ProviderError('provider_error', `${name} token endpoint: HTTP ${res.status}`, true);
      if (res.status !== 200 || !isObject(res.body)) {
        const code = isObject(res.body) && typeof res.body.error === 'string' ? res.body.error.replace(/[^a-z_]/gi, '').slice(0, 40) : `HTTP ${res.status}`;
        throw new ProviderError('token_exchange_failed', `${name} refused the authorization code (${code}).`);
      }
      const idToken = res.body.id_token;
      if (typeof idToken !== 'string') throw new ProviderError('id_token_missing', `${name} returned no ID token.`);
      const claims = await verifyIdToken(idToken, [webClientId], (n) => n === exchange.nonce);
      const names = quirks.callbackNames?.(exchange.callbackParams);
      return profileFrom(await withUserinfo(claims, res.body.access_token, ep), names);
    },

    async verifyNativeToken(token: NativeToken): Promise<ProviderProfile> {
      if (!token.idToken) throw new ProviderError('id_token_missing', `${name} sign-in needs the id_token from the provider's SDK.`);
      const raw = token.nonce;
      // With a nonce sent, the token must carry it; a token carrying a nonce needs the app to send it.
      const nonceOk = (claim: unknown) =>
        raw === undefined
          ? claim === undefined
          : typeof claim === 'string' && (claim === raw || (quirks.hashedNativeNonce === true && claim === sha256Hex(raw)));
      const claims = await verifyIdToken(token.idToken, config.clientIds, nonceOk);
      const sent = { firstName: text(token.firstName), lastName: text(token.lastName) };
      const profile = profileFrom(claims);
      return { ...profile, firstName: profile.firstName ?? sent.firstName, lastName: profile.lastName ?? sent.lastName };
    },
  };
}
