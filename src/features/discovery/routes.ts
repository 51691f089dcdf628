import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Config } from '../../config/index.js';
import type { KeyRing } from '../../infra/keys.js';
import { ASSERTION_ALGORITHMS } from '../clients/service.js';

export interface DiscoveryRoutesOptions {
  config: Config;
  keys: KeyRing;
}

/** Key discovery: any standard JWT library or API gateway verifies with just the issuer URL. */
export const discoveryRoutes: FastifyPluginAsyncTypebox<DiscoveryRoutesOptions> = async (app, { config, keys }) => {
  app.get(
    '/.well-known/jwks.json',
    {
      schema: { tags: ['discovery'], summary: 'Public signing keys (JWK Set)' },
    },
    async (_request, reply) => {
      // Verifiers cache this; on an unknown `kid` they should refetch.
      reply.header('cache-control', 'public, max-age=300, stale-while-revalidate=60');
      return keys.jwks();
    },
  );

  app.get(
    '/.well-known/openid-configuration',
    {
      schema: { tags: ['discovery'], summary: 'Discovery document (issuer, JWKS URI, token endpoint)' },
    },
    async (_request, reply) => {
      reply.header('cache-control', 'public, max-age=300');
      const base = config.publicUrl;
      return {
        issuer: config.jwt.issuer,
        jwks_uri: `${base}/.well-known/jwks.json`,
        token_endpoint: `${base}/auth/token`,
        grant_types_supported: [...(config.passwordGrantEnabled ? ['password'] : []), 'refresh_token'],
        response_types_supported: ['token'],
        // No client (the implicit first-party client) or a registered one (docs/clients.md).
        token_endpoint_auth_methods_supported: ['none', 'client_secret_basic', 'client_secret_post', 'private_key_jwt'],
        subject_types_supported: ['public'],
        // Every algorithm of a published key (two during a rotation to another algorithm).
        id_token_signing_alg_values_supported: keys.algorithms(),
        // private_key_jwt assertions (RFC 7523): asymmetric algorithms only.
        token_endpoint_auth_signing_alg_values_supported: [...ASSERTION_ALGORITHMS],
        ...(config.introspection.clients.length
          ? { introspection_endpoint: `${base}/auth/introspect`, introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'] }
          : {}),
        claims_supported: ['iss', 'aud', 'sub', 'iat', 'exp', 'jti', 'sid', 'email', 'email_verified', 'roles', 'permissions', 'amr', 'client_id'],
        service_documentation: `${base}/docs`,
      };
    },
  );
};
