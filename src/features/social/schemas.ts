import { Type } from 'typebox';
import type { IdentityRow } from './tables.js';
import { MAX_APPLE_USER_LENGTH, MAX_STATE_LENGTH, MAX_TOKEN_LENGTH } from '../../limits.js';

export const ProviderParams = Type.Object({
  provider: Type.String({ maxLength: 64, description: '`google`, `apple`, `github`, `facebook` or a configured OIDC provider' }),
});

export const ProvidersBody = Type.Object({
  providers: Type.Array(
    Type.Object({
      id: Type.String({ description: 'Path segment of /auth/oauth/:provider/…' }),
      name: Type.String({ description: 'Display name' }),
      web: Type.Boolean({ description: 'The redirect flow (/authorize → /callback) is available' }),
      native: Type.Union([Type.Literal('id_token'), Type.Literal('access_token')], { description: 'What POST /auth/oauth/:provider/token takes' }),
    }),
  ),
});

export const AuthorizeQuery = Type.Object({
  redirect_uri: Type.String({ maxLength: 2048, description: 'Where the one-time code goes: exactly one of OAUTH_REDIRECT_ALLOWLIST' }),
  state: Type.Optional(Type.String({ maxLength: MAX_STATE_LENGTH, description: "The app's own state, returned unchanged with the code" })),
  // Required (400 pkce_required without them), but checked by the flow, not the schema: a confidential client may be exempted one day.
  code_challenge: Type.Optional(
    Type.String({
      maxLength: 128,
      description: "Required: the app's PKCE challenge, BASE64URL(SHA-256(code_verifier)); the code_verifier goes to POST /auth/token",
    }),
  ),
  code_challenge_method: Type.Optional(Type.String({ maxLength: 10, description: 'Required: `S256` (the only method accepted; `plain` is refused)' })),
});

/** What a provider sends back (query string, or Apple's form_post body); unknown members are ignored. */
export const CallbackParams = Type.Object({
  state: Type.Optional(Type.String({ maxLength: MAX_STATE_LENGTH })),
  code: Type.Optional(Type.String({ maxLength: 2048 })),
  error: Type.Optional(Type.String({ maxLength: 256 })),
  error_description: Type.Optional(Type.String({ maxLength: 2048 })),
  /** Apple, first authorisation only: `{"name":{"firstName":…,"lastName":…},"email":…}`. */
  user: Type.Optional(Type.String({ maxLength: MAX_APPLE_USER_LENGTH })),
});

export const NativeTokenBody = Type.Object({
  id_token: Type.Optional(Type.String({ maxLength: 8192, description: 'OpenID providers (Google, Apple, generic): the ID token from the SDK' })),
  access_token: Type.Optional(Type.String({ maxLength: MAX_TOKEN_LENGTH, description: 'GitHub, Facebook: the access token from the SDK' })),
  nonce: Type.Optional(Type.String({ maxLength: MAX_STATE_LENGTH, description: 'The raw nonce given to the SDK (Apple: the token carries its SHA-256)' })),
  first_name: Type.Optional(Type.String({ maxLength: 100, description: 'Apple gives the name to the app on the first sign-in only: pass it on' })),
  last_name: Type.Optional(Type.String({ maxLength: 100 })),
});

export const IdentityBody = Type.Object({
  provider: Type.String(),
  email: Type.Union([Type.String(), Type.Null()], { description: 'As the provider gave it at the last sign-in' }),
  email_verified: Type.Boolean(),
  created_at: Type.String({ format: 'date-time' }),
  last_sign_in_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});

export const IdentitiesBody = Type.Object({ identities: Type.Array(IdentityBody) });

export const toIdentityBody = (i: IdentityRow) => ({
  provider: i.provider,
  email: i.email,
  email_verified: i.emailVerified,
  created_at: i.createdAt.toISOString(),
  last_sign_in_at: i.lastSignInAt?.toISOString() ?? null,
});
