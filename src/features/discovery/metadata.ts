import type { Config } from '../../config/index.js';
import type { KeyRing } from '../../infra/keys.js';
import { ASSERTION_ALGORITHMS, AUTH_METHODS, STANDARD_SCOPES } from '../clients/service.js';
import { EMAIL_CODE_GRANT } from '../email-sign-in/service.js';

/** The client authentication methods of the revocation and introspection endpoints (no `none` at introspection: only confidential callers). */
const CONFIDENTIAL_AUTH_METHODS = AUTH_METHODS.filter((m) => m !== 'none');

/** Every claim Tessera puts in its tokens or answers at userinfo (ID tokens come from the authorization code flow). */
const CLAIMS = [
  'iss',
  'sub',
  'aud',
  'exp',
  'iat',
  'auth_time',
  'nonce',
  'acr',
  'amr',
  'azp',
  'sid',
  'jti',
  'client_id',
  'scope',
  'email',
  'email_verified',
  'name',
  'given_name',
  'family_name',
  'updated_at',
  'roles',
  'permissions',
];

/**
 * The authorization server's metadata: OpenID Connect Discovery 1.0 and RFC 8414 (one document
 * for both). It lists exactly what works, and says so where a default would promise more
 * (`request_uri_parameter_supported` defaults to true; `response_modes_supported` to query and fragment).
 * The authorization endpoint, the end-session endpoint, ID tokens, PKCE, `prompt` and `acr_values` are
 * features/oidc's (test/integration/openid-provider.test.ts holds them to what is listed here).
 */
export function authorizationServerMetadata(config: Config, keys: KeyRing) {
  const base = config.publicUrl;
  const algorithms = keys.algorithms();
  return {
    issuer: config.jwt.issuer,
    authorization_endpoint: `${base}/auth/authorize`,
    token_endpoint: `${base}/auth/token`,
    userinfo_endpoint: `${base}/auth/userinfo`,
    revocation_endpoint: `${base}/auth/revoke`,
    introspection_endpoint: `${base}/auth/introspect`,
    end_session_endpoint: `${base}/auth/end-session`,
    pushed_authorization_request_endpoint: `${base}/auth/par`,
    require_pushed_authorization_requests: false,
    jwks_uri: `${base}/.well-known/jwks.json`,
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    grant_types_supported: [
      'authorization_code',
      'refresh_token',
      ...(config.passwordGrantEnabled ? ['password'] : []),
      ...(config.emailSignIn.enabled ? [EMAIL_CODE_GRANT] : []),
    ],
    scopes_supported: [...STANDARD_SCOPES],
    claims_supported: CLAIMS,
    subject_types_supported: ['public'],
    code_challenge_methods_supported: ['S256'],
    prompt_values_supported: ['none', 'login', 'consent', 'select_account'],
    // What an ID token's acr says (features/oidc/id-token.ts); acr_values=mfa is the one a client asks for.
    acr_values_supported: ['mfa', 'pwd', 'fed'],
    // Every algorithm of a published key (two during a rotation to another algorithm).
    id_token_signing_alg_values_supported: algorithms,
    // No client (the implicit first-party client) or a registered one (docs/clients.md).
    token_endpoint_auth_methods_supported: [...AUTH_METHODS],
    // private_key_jwt assertions (RFC 7523): asymmetric algorithms only.
    token_endpoint_auth_signing_alg_values_supported: [...ASSERTION_ALGORITHMS],
    revocation_endpoint_auth_methods_supported: [...AUTH_METHODS],
    revocation_endpoint_auth_signing_alg_values_supported: [...ASSERTION_ALGORITHMS],
    // Registered confidential clients, and the resource servers of INTROSPECTION_CLIENTS (Basic or post).
    introspection_endpoint_auth_methods_supported: CONFIDENTIAL_AUTH_METHODS,
    introspection_endpoint_auth_signing_alg_values_supported: [...ASSERTION_ALGORITHMS],
    authorization_response_iss_parameter_supported: true,
    backchannel_logout_supported: true,
    backchannel_logout_session_supported: true,
    claims_parameter_supported: false,
    request_parameter_supported: false,
    request_uri_parameter_supported: false,
    service_documentation: `${base}/docs`,
  };
}
