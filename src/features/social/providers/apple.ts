/**
 * Sign in with Apple (OpenID Connect, with Apple's quirks):
 * - the client secret is an ES256 JWT signed with the .p8 key (header `kid` =
 *   APPLE_KEY_ID; `iss` = APPLE_TEAM_ID, `sub` = the Services ID (the web client
 *   id), `aud` = the issuer, https://appleid.apple.com), valid one hour and
 *   signed again five minutes before it expires (Apple allows up to six months);
 * - the token endpoint takes the secret in the form body (`client_secret_post`);
 * - with the `name`/`email` scopes Apple answers with `response_mode=form_post`
 *   (a cross-site POST to the callback) and posts `user` (JSON with
 *   `name.firstName`/`name.lastName`) on the first authorisation only: it is kept;
 * - `email_verified` may be the string "true";
 * - native tokens (the iOS SDK / expo-apple-authentication) carry SHA-256 (hex) of
 *   the raw nonce the app generated: the nonce claim may equal the raw nonce the
 *   app sends, or its SHA-256.
 */
import { createPrivateKey } from 'node:crypto';
import { SignJWT } from 'jose';
import type { AppleConfig } from '../../../config/index.js';
import type { Clock } from '../../../infra/clock.js';
import type { Provider } from '../provider.js';
import { isObject, text, type HttpOptions } from './oauth2-http.js';
import { createOidcProvider, webClientIdOf } from './oidc.js';
import { MAX_APPLE_USER_LENGTH } from '../../../limits.js';

const SECRET_LIFETIME_SECONDS = 3600;
const RENEW_BEFORE_SECONDS = 300;

/** Apple's `user` form field: `{"name":{"firstName":"…","lastName":"…"},"email":"…"}`. */
export function appleUserNames(params: Record<string, string>): { firstName: string | null; lastName: string | null } {
  const none = { firstName: null, lastName: null };
  const raw = params.user;
  if (!raw || raw.length > MAX_APPLE_USER_LENGTH) return none;
  try {
    const user = JSON.parse(raw) as unknown;
    const name = isObject(user) && isObject(user.name) ? user.name : null;
    return name ? { firstName: text(name.firstName), lastName: text(name.lastName) } : none;
  } catch {
    // not JSON: Apple's optional name is simply absent
    return none;
  }
}

export function createAppleProvider(config: AppleConfig, http: HttpOptions, clock: Clock): Provider {
  const key = createPrivateKey(config.privateKeyPem);
  const servicesId = webClientIdOf(config);
  let cached: { jwt: string; exp: number } | null = null;

  async function clientSecret(): Promise<string> {
    const now = Math.floor(clock.now().getTime() / 1000);
    if (cached && cached.exp - now > RENEW_BEFORE_SECONDS) return cached.jwt;
    const exp = now + SECRET_LIFETIME_SECONDS;
    const jwt = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: config.keyId })
      .setIssuer(config.teamId)
      .setSubject(servicesId)
      .setAudience(config.issuer)
      .setIssuedAt(now)
      .setExpirationTime(exp)
      .sign(key);
    cached = { jwt, exp };
    return jwt;
  }

  return createOidcProvider(config, http, clock, {
    responseMode: 'form_post',
    tokenAuthMethod: 'client_secret_post',
    clientSecret,
    emailVerified: (claims) => claims.email_verified === true || claims.email_verified === 'true',
    hashedNativeNonce: true,
    callbackNames: appleUserNames,
  });
}
