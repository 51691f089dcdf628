import formbody from '@fastify/formbody';
import cors from '@fastify/cors';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Services } from './composition/services.js';
import type { Config } from './config/index.js';
import { normaliseEmail } from './features/accounts/email.js';
import { emailRoutes } from './features/accounts/email-routes.js';
import { emailSignInRoutes } from './features/email-sign-in/routes.js';
import { accountRoutes } from './features/accounts/routes.js';
import { adminRoutes } from './features/admin/routes.js';
import { auditRoutes } from './features/audit/routes.js';
import { createClientAuthenticator } from './features/clients/client-auth.js';
import { clientRoutes } from './features/clients/routes.js';
import { discoveryRoutes } from './features/discovery/routes.js';
import { healthRoutes } from './features/health/routes.js';
import { introspectionRoutes } from './features/introspection/routes.js';
import { mfaRoutes } from './features/mfa/routes.js';
import { oidcRoutes } from './features/oidc/routes.js';
import { pushedRequestRoutes } from './features/oidc/pushed-request-routes.js';
import { revocationRoutes } from './features/revocation/routes.js';
import { passkeyRoutes } from './features/passkeys/routes.js';
import { caller } from './features/sessions/authenticate.js';
import { sessionRoutes } from './features/sessions/routes.js';
import { socialRoutes } from './features/social/routes.js';
import { tokenRoutes } from './features/tokens/routes.js';
import { userinfoRoutes } from './features/userinfo/routes.js';
import { clientErrorHandler } from './http/client-errors.js';
import { registerErrorHandling } from './http/error-handler.js';
import { registerMetrics } from './http/metrics.js';
import { registerNoNul } from './http/no-nul.js';
import { registerOpenApi } from './http/openapi.js';
import { registerFavicon } from './http/favicon.js';
import { pageStylesheet, registerPageStylesheet, type PageTheme } from './http/page-layout.js';
import { loadPageTemplates } from './http/page-templates.js';
import { registerRateLimits } from './http/rate-limits.js';
import { registerRequestDeadline } from './http/request-deadline.js';
import { registerRequestLog, requestId } from './http/request-log.js';
import { registerSecurityHeaders } from './http/security-headers.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The services the app serves (the tests and the CLI of old reached the admin service here). */
    services: Services;
  }
}

export interface AppOptions {
  /** In a cluster worker: the primary's count of crashed workers (metrics). */
  workerCrashes?: () => number;
}

/**
 * The HTTP application over built services (composition/services.ts): framework
 * plugins first, then the features' routes. It runs the services' background work
 * while it runs (`start` when ready, `close` when closed).
 */
export async function buildApp(config: Config, services: Services, opts: AppOptions = {}): Promise<FastifyInstance> {
  const { infra, metrics, hasher, sessions, accounts } = services;
  const { database, clock } = infra;
  // The process's logger (composition/infra.ts): services and requests write one stream.
  const logger: FastifyBaseLogger = infra.logger;

  const app = Fastify({
    loggerInstance: logger,
    // One line per request, written by registerRequestLog (no query strings: links carry tokens).
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy: config.trustProxy as boolean | string[],
    bodyLimit: config.bodyLimit,
    // Node's HTTP parser refuses a larger request head (431 headers_too_large) before any route runs.
    http: { maxHeaderSize: config.maxHeaderBytes },
    clientErrorHandler,
    requestIdHeader: false,
    genReqId: requestId,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    // No type coercion: a JSON number or array is not a string (`{"email": 42}` is a 422, not "42").
    // Querystrings with non-string types would need a per-part validator compiler.
    ajv: { customOptions: { removeAdditional: true, allErrors: false, coerceTypes: false } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.addHook('onReady', () => services.start());
  app.addHook('onClose', () => services.close());
  registerRequestLog(app);
  registerErrorHandling(app);
  // Before every route: its onRoute hook wraps the handlers registered after it.
  registerRequestDeadline(app, config.requestDeadlineMs);
  registerNoNul(app);
  const https = config.publicUrl.startsWith('https:');
  registerSecurityHeaders(app, {
    // Over plain http (development) upgrading subresources to https would break /docs.
    // base-uri 'none' (ASVS 5.0 V3.4.3): Tessera's pages use no <base>.
    contentSecurityPolicy: { directives: { upgradeInsecureRequests: https ? [] : null, baseUri: ["'none'"] } },
    // HSTS only when the service is reached over https (PUBLIC_URL); browsers ignore it over http anyway.
    strictTransportSecurity: https ? { maxAge: 31536000, includeSubDomains: true } : false,
    // Pages opened from emailed links carry tokens in their URL: never send it on as a Referer.
    referrerPolicy: { policy: 'no-referrer' },
  });
  // CORS_ORIGINS: exact origins only, no cookies (the API authenticates with the Authorization header).
  if (config.corsOrigins.length) {
    await app.register(cors, {
      origin: config.corsOrigins,
      methods: ['GET', 'POST', 'PATCH', 'DELETE'],
      allowedHeaders: ['Authorization', 'Content-Type', 'X-Request-Id'],
      exposedHeaders: ['Retry-After', 'WWW-Authenticate', 'X-Request-Id', 'RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset'],
      credentials: false,
      maxAge: 600,
      strictPreflight: true,
    });
  }
  await app.register(formbody);
  // JSON and forms only: a text/plain body is a 415, not a string handed to the schema (and no CORS-simple bodies).
  app.removeContentTypeParser('text/plain');
  await registerOpenApi(app, config);
  registerFavicon(app);
  registerPageStylesheet(app, pageStylesheet(config.ui.primaryColor, config.ui.templatesDir));
  // The pages' templates, read and checked once here: a broken one stops the start, naming its file.
  const theme: PageTheme = { appName: config.appName, logoUrl: config.ui.logoUrl, templates: loadPageTemplates(config.ui.templatesDir) };

  // Rate limits over the shared counters (composition/infra.ts), before the routes, which they wrap.
  if (infra.counters && config.rateLimits.enabled) {
    const guard = services.signInGuard;
    await registerRateLimits(app, {
      store: infra.counters.store,
      limits: config.rateLimits.limits,
      rateLimited: metrics.rateLimited,
      accountKey: normaliseEmail,
      userOf: (request) => caller(request).token.sub,
      ...(guard ? { isKnownClient: guard.isKnownClient } : {}),
    });
  }

  registerMetrics(app, {
    metrics,
    hashQueueDepth: () => hasher.queueDepth,
    outbox: () => services.outbox.backlog(),
    pool: database.kind === 'postgres' ? () => database.poolStats() ?? { total: 0, idle: 0, waiting: 0 } : null,
    workerCrashes: opts.workerCrashes ?? null,
    now: () => clock.now(),
    token: config.metricsToken,
  });
  await app.register(healthRoutes, { pingDatabase: () => database.ping(), pingRedis: services.sender?.redis?.ping ?? null });
  await app.register(discoveryRoutes, { config, keys: infra.keys });
  const authenticateClient = createClientAuthenticator(services.clients);
  await app.register(tokenRoutes, {
    accounts,
    sessions,
    socialCodes: services.webFlow,
    clientCodes: services.oidcCodes,
    authenticateClient,
    passwordGrant: config.passwordGrantEnabled,
    emailCodes: services.emailSignIn,
  });
  // The OpenID Provider's token-side endpoints (docs/openid-provider.md).
  await app.register(userinfoRoutes, { userinfo: services.userinfo });
  await app.register(revocationRoutes, { sessions, authenticateClient });
  await app.register(socialRoutes, { social: services.social, webFlow: services.webFlow, sessions, publicUrl: config.publicUrl });
  // RFC 7662 introspection: the resource servers of INTROSPECTION_CLIENTS, and registered confidential clients.
  await app.register(introspectionRoutes, { introspection: services.introspection, authenticateClient });
  await app.register(accountRoutes, { accounts, sessions });
  await app.register(sessionRoutes, { sessions });
  await app.register(mfaRoutes, { mfa: services.mfa, sessions });
  const webOrigins = config.webauthn.origins.filter((o) => !o.startsWith('android:'));
  await app.register(emailSignInRoutes, { emailSignIn: services.emailSignIn, theme });
  await app.register(passkeyRoutes, { passkeys: services.passkeys, sessions, relatedOrigins: webOrigins.length > 1 ? webOrigins : null });
  await app.register(auditRoutes, { audit: services.audit, sessions });
  await app.register(adminRoutes, { admin: services.admin, sessions, grantsOf: (userId) => services.rbac.grantsOf(userId) });
  // The OAuth client registry (docs/clients.md).
  await app.register(clientRoutes, { clients: services.clients, sessions, grantsOf: (userId) => services.rbac.grantsOf(userId) });
  // The OpenID Provider's authorization endpoint, hosted pages and RP-initiated logout (docs/openid-provider.md).
  await app.register(oidcRoutes, {
    flow: services.oidc,
    pushed: services.pushedRequests,
    endSession: services.endSession,
    browserSessions: services.browserSessions,
    sessions,
    publicUrl: config.publicUrl,
    theme,
    browserSessionSeconds: config.jwt.refreshTokenDays * 24 * 60 * 60,
    clientName: async (clientId) => (await services.clients.find(clientId))?.name ?? null,
    providers: () => services.social.providers().map((p) => ({ id: p.id, name: p.displayName })),
    webFlow: services.webFlow,
    passwordless: services.passwordless,
  });
  await app.register(pushedRequestRoutes, { pushed: services.pushedRequests, authenticateClient });
  app.decorate('services', services);
  await app.register(emailRoutes, {
    accounts,
    flows: services.flows,
    sessions,
    theme,
    emailConfirmedRedirectUrl: config.email.emailConfirmedRedirectUrl,
    passwordResetUrl: config.email.passwordResetUrl,
  });
  return app;
}
