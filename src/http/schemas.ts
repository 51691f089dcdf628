import { Type } from 'typebox';

/** Body of every non-OAuth error. */
export const ErrorBody = Type.Object(
  {
    error: Type.String({ description: 'Stable snake_case code from the error catalogue' }),
    message: Type.String(),
    details: Type.Optional(Type.Array(Type.Object({ field: Type.String(), message: Type.String() }))),
  },
  { description: 'Error' },
);

/** RFC 6749 §5.2 error body. */
export const OAuthErrorBody = Type.Object(
  {
    error: Type.String({ description: 'invalid_request | invalid_grant | unsupported_grant_type | email_not_verified (403) | mfa_required (403) | ...' }),
    error_description: Type.String(),
    mfa_token: Type.Optional(Type.String({ description: 'mfa_required: pass it with a code to POST /auth/mfa/verify' })),
    expires_in: Type.Optional(Type.Integer({ description: 'mfa_required: seconds the mfa_token stays valid' })),
    methods: Type.Optional(
      Type.Array(Type.String(), { description: 'mfa_required: the second steps the account can take: `totp` (with recovery codes), `passkey`' }),
    ),
  },
  { description: 'OAuth2 error (RFC 6749 §5.2)' },
);

/** RFC 6749 §5.1 token response. */
export const TokenResponseBody = Type.Object(
  {
    access_token: Type.String(),
    token_type: Type.Literal('Bearer'),
    expires_in: Type.Integer({ description: 'Seconds until the access token expires' }),
    refresh_token: Type.Optional(
      Type.String({ description: 'Absent for a third-party client of the authorization code flow that was not granted offline_access' }),
    ),
    id_token: Type.Optional(Type.String({ description: 'OpenID Connect ID token: the authorization code flow with the openid scope' })),
    scope: Type.Optional(Type.String({ description: 'The granted scopes (authorization code flow of a registered client)' })),
  },
  { description: 'Tokens (RFC 6749 §5.1)' },
);

/** `response` entries for the given error statuses. */
export const errorResponses = (...statuses: number[]) => Object.fromEntries(statuses.map((s) => [s, ErrorBody]));

export const NoContent = Type.Null({ description: 'Done (no content)' });

/** OpenAPI security of routes guarded by `authenticate`: a Bearer token, or Swagger UI's password-flow login. */
export const secured: Array<Record<string, string[]>> = [{ bearerAuth: [] }, { oauth2: [] }];
