import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/index.js';
import { FAVICON } from './favicon.js';

/** OpenAPI document from the route schemas, served at /docs/json, with Swagger UI at /docs. */
export async function registerOpenApi(app: FastifyInstance, config: Config): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Tessera',
        version: '0.1.0',
        description:
          'Authentication service: accounts, OAuth2 token endpoint, RS256/ES256/EdDSA JWTs verified with the JWKS.\n\n' +
          'A path called with a method it does not have (e.g. `GET /auth/token`) answers **405** `method_not_allowed` with an `Allow` header ' +
          'listing the methods it has (`#/components/responses/MethodNotAllowed`). OpenAPI lists only the operations that exist, ' +
          'so that answer appears on none of them.',
      },
      servers: [{ url: config.publicUrl }],
      components: {
        responses: {
          MethodNotAllowed: {
            description: 'The path exists, but not for this method',
            headers: { Allow: { description: 'The methods the path has, e.g. `POST` or `GET, HEAD`', schema: { type: 'string' } } },
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  required: ['error', 'message'],
                  properties: { error: { type: 'string', enum: ['method_not_allowed'] }, message: { type: 'string' } },
                },
              },
            },
          },
        },
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
          // POST /auth/introspect: a client of INTROSPECTION_CLIENTS (or client_id/client_secret in the body).
          introspectionClient: { type: 'http', scheme: 'basic' },
          // Swagger UI's "Authorize" button signs in through the password grant (its client fields are hidden: see DOCS_CSS).
          oauth2: {
            type: 'oauth2',
            description:
              'Sign in with your email and password (the password grant, as the built-in first-party client). ' +
              'Tokens of a registered client (`tessera clients create`) are asked for at `POST /auth/token` with its credentials ' +
              '(HTTP Basic, `client_secret_basic`), e.g. `curl -u client_id:client_secret`, not from this dialog.',
            flows: { password: { tokenUrl: '/auth/token', refreshUrl: '/auth/token', scopes: {} } },
          },
        },
      },
      tags: [
        { name: 'auth', description: 'Sign-up, sign-in, tokens' },
        { name: 'users', description: 'The signed-in user' },
        { name: 'discovery', description: 'Keys and metadata for token verifiers' },
        { name: 'operations', description: 'Health checks' },
      ],
    },
  });
  // A browser pointed at the server (the README's http://localhost:8000) lands on the API docs, not a 404.
  // Relative, like the pages' links: behind a proxy that mounts Tessera under a path, it stays under it.
  app.get('/', { schema: { hide: true } }, async (_request, reply) => reply.redirect('docs', 302));
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    staticCSP: docsCsp(config.publicUrl),
    uiConfig: { persistAuthorization: false },
    theme: {
      title: `${config.appName} API`,
      css: [{ filename: 'tessera.css', content: DOCS_CSS }],
      favicon: [{ filename: 'favicon.ico', rel: 'icon', sizes: '32x32', type: 'image/x-icon', content: FAVICON }],
    },
  });
}

/**
 * Swagger UI's password-flow dialog always asks for a client_id, a client_secret and where to send
 * them. Those rows are hidden, and the dialog asks for the username and password only: Swagger UI
 * sends the client's credentials as HTTP Basic, and a wrong secret is answered 401 with
 * `WWW-Authenticate: Basic` (RFC 6749 §5.2 requires it), which makes the browser open its own
 * login prompt over the docs. Left empty, they are `Basic Og==`, which the token endpoint reads as
 * no client. (Swagger UI has no option for this.)
 */
const DOCS_CSS = `.auth-container .wrapper:has(> label[for="password_type"]),
.auth-container .wrapper:has(> label[for^="client_id_"]),
.auth-container .wrapper:has(> label[for^="client_secret_"]) { display: none; }
`;

// The Swagger logo in the top bar is an SVG with an inline <style>; @fastify/swagger-ui's csp.json lists no hash for it.
const SWAGGER_LOGO_STYLE = "'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='";

/**
 * The policy of `staticCSP: true`, with two changes: the logo's style hash, and `upgrade-insecure-requests`
 * only over https — over plain http on any host but localhost the browser would fetch the UI's own
 * scripts over https and /docs would stay blank.
 */
function docsCsp(publicUrl: string): string {
  return (
    [
      "default-src 'self'",
      "base-uri 'self'",
      "font-src 'self' https: data:",
      "frame-ancestors 'self'",
      "img-src 'self' data: validator.swagger.io",
      "object-src 'none'",
      "script-src 'self'",
      "script-src-attr 'none'",
      `style-src 'self' https: ${SWAGGER_LOGO_STYLE}`,
      ...(publicUrl.startsWith('https:') ? ['upgrade-insecure-requests'] : []),
    ].join('; ') + ';'
  );
}
