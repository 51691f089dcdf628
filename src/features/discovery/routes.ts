import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Config } from '../../config/index.js';
import type { KeyRing } from '../../infra/keys.js';
import { authorizationServerMetadata } from './metadata.js';

export interface DiscoveryRoutesOptions {
  config: Config;
  keys: KeyRing;
}

/** Key and metadata discovery: any standard JWT library, OpenID relying party or API gateway works from the issuer URL alone. */
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

  // One document under both names (OpenID Connect Discovery 1.0 §4, RFC 8414 §3).
  for (const [path, summary] of [
    ['/.well-known/openid-configuration', 'OpenID Provider metadata (OpenID Connect Discovery 1.0)'],
    ['/.well-known/oauth-authorization-server', 'Authorization server metadata (RFC 8414)'],
  ] as const) {
    app.get(path, { schema: { tags: ['discovery'], summary } }, async (_request, reply) => {
      reply.header('cache-control', 'public, max-age=300');
      return authorizationServerMetadata(config, keys);
    });
  }
};
