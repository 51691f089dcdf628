import formbody from '@fastify/formbody';
import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { DestinationStream } from 'pino';
import type { Config } from './config/index.js';
import { createAccountMail } from './features/accounts/account-mail.js';
import { createEmailFlows } from './features/accounts/email-flows.js';
import { emailRoutes } from './features/accounts/email-routes.js';
import { accountRoutes } from './features/accounts/routes.js';
import { createAccountService } from './features/accounts/service.js';
import { createSignInGuard } from './features/accounts/sign-in-guard.js';
import { discoveryRoutes } from './features/discovery/routes.js';
import { createEmailTokenService } from './features/email-tokens/service.js';
import { healthRoutes } from './features/health/routes.js';
import { createEmailSender, createOutboxService } from './features/mail/index.js';
import { sessionRoutes } from './features/sessions/routes.js';
import { createSessionService } from './features/sessions/service.js';
import { sessionCacheFor } from './features/sessions/session-cache-wiring.js';
import { createTokenSigner } from './features/tokens/token-signer.js';
import { createTokenVerifier } from './features/tokens/token-verifier.js';
import { memoizeAccessTokens } from './features/tokens/verified-access-memo.js';
import { tokenRoutes } from './features/tokens/routes.js';
import { introspectionRoutes } from './features/introspection/routes.js';
import { createIntrospectionService } from './features/introspection/service.js';
import { registerErrorHandling } from './http/error-handler.js';
import { clientErrorHandler } from './http/client-errors.js';
import { registerMetrics } from './http/metrics.js';
import { registerNoNul } from './http/no-nul.js';
import { registerRequestDeadline } from './http/request-deadline.js';
import { registerRequestLog, requestId } from './http/request-log.js';
import { registerOpenApi } from './http/openapi.js';
import { registerFavicon } from './http/favicon.js';
import { registerRateLimits } from './http/rate-limits.js';
import { createMemoryCounterStore, createRedisCounterStore, type CounterStore } from './infra/counter-store.js';
import { systemClock, type Clock } from './infra/clock.js';
import type { DatabaseHandle } from './infra/db/client.js';
import type { KeyRing } from './infra/keys.js';
import { loggerOptions } from './infra/logger.js';
import { redisOutageNotice } from './infra/outage-notice.js';
import { createMetrics, instrumentHasher } from './infra/metrics.js';
import { createBcryptHasher, type PasswordHasher } from './infra/password-hasher.js';
import { createSecretBox, createStaticBox } from './infra/secret-box.js';
import { createAuditService } from './features/audit/service.js';
import { auditRoutes } from './features/audit/routes.js';
import { mfaRoutes } from './features/mfa/routes.js';
import { adminRoutes } from './features/admin/routes.js';
import { createProviderRegistry } from './features/social/registry.js';
import { socialRoutes } from './features/social/routes.js';
import { createSocialService, type SocialService } from './features/social/service.js';
import { createWebFlow } from './features/social/web-flow.js';
import { createAdminService, type AdminService } from './features/admin/service.js';
import { createRbacService } from './features/rbac/service.js';
import { createMfaService, type MfaService } from './features/mfa/service.js';

declare module 'fastify' {
  interface FastifyInstance {
    services: { admin: AdminService };
  }
}

export interface AppDeps {
  database: DatabaseHandle;
  keys: KeyRing;
  clock?: Clock;
  hasher?: PasswordHasher;
  /** Encrypts TOTP secrets (MFA_ENCRYPTION_KEY, see runtime.ts loadMfaKey). */
  mfaKey: Buffer;
  /** Where the JSON log goes (tests read it); stdout otherwise. */
  logStream?: DestinationStream;
  /** In a cluster worker: the primary's count of crashed workers (metrics). */
  workerCrashes?: () => number;
}

/** Builds the HTTP application: framework plugins first, then features. Tests call this directly. */
export async function buildApp(config: Config, deps: AppDeps): Promise<FastifyInstance> {
  const clock = deps.clock ?? systemClock;
  const { bcryptRounds, bcryptConcurrency, bcryptMaxQueue, bcryptMaxWaitMs, bcryptNice } = config.passwords;
  const ownHasher = deps.hasher ? null : createBcryptHasher(bcryptRounds, bcryptConcurrency, { maxQueue: bcryptMaxQueue, maxWaitMs: bcryptMaxWaitMs, nice: bcryptNice });
  const metrics = createMetrics();
  const rbac = createRbacService({ db: deps.database.db, clock, defaultRole: config.defaultRole });
  const audit = createAuditService({ db: deps.database.db, clock });
  const hasher = instrumentHasher(deps.hasher ?? (ownHasher as PasswordHasher), metrics.hashSeconds);
  const db = deps.database.db;

  const app = Fastify({
    logger: loggerOptions(config, deps.logStream),
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

  // The app owns (and closes) only a hasher it created.
  if (ownHasher) app.addHook('onClose', () => ownHasher.close());
  registerRequestLog(app);
  registerErrorHandling(app);
  // Before every route: its onRoute hook wraps the handlers registered after it.
  registerRequestDeadline(app, config.requestDeadlineMs);
  registerNoNul(app);
  const https = config.publicUrl.startsWith('https:');
  await app.register(helmet, {
    global: true,
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

  // Rate limits and brute-force counters: shared through Redis when configured, this process's own otherwise
  // (and whenever Redis does not answer: the limits stay on). Before the routes, which they wrap.
  const limits = config.rateLimits;
  const countsInRedis = Boolean(config.redisUrl) && (limits.enabled || limits.bruteForce.enabled);
  const queuesInRedis = Boolean(config.redisUrl) && deps.database.kind === 'postgres';
  // However many connections notice, a Redis outage is one warning saying what still works, and one line when it is back.
  const stillWorks = [countsInRedis ? "rate limits use this process's counters" : '', queuesInRedis ? 'email waits in the outbox' : ''].filter(Boolean).join(' and ');
  const redisNotice = config.redisUrl ? redisOutageNotice(config.redisUrl, stillWorks, app.log) : null;
  let counters: CounterStore | null = null;
  if (limits.enabled || limits.bruteForce.enabled) {
    const local = createMemoryCounterStore(clock);
    const shared = config.redisUrl
      ? createRedisCounterStore({ url: config.redisUrl, reconnectMaxDelayMs: config.redisReconnectMaxDelayMs, logger: app.log, ...(redisNotice ? { notice: redisNotice.connection() } : {}) }, local)
      : null;
    counters = shared ?? local;
    if (shared) app.addHook('onReady', async () => void (await shared.ready(2000)));
    const store = counters;
    app.addHook('onClose', () => store.close());
  }
  const signInGuard = counters && limits.bruteForce.enabled
    ? createSignInGuard({ store: counters, settings: limits.bruteForce, throttled: (limit) => metrics.rateLimited.inc({ limit }) })
    : undefined;
  if (counters && limits.enabled) {
    await registerRateLimits(app, { store: counters, limits: limits.limits, rateLimited: metrics.rateLimited, ...(signInGuard ? { isKnownClient: signInGuard.isKnownClient } : {}) });
  }

  const signer = createTokenSigner(deps.keys, clock, {
    algorithm: config.jwt.algorithm,
    issuer: config.jwt.issuer,
    audience: config.jwt.audience,
    accessTokenSeconds: config.jwt.accessTokenMinutes * 60,
  });
  // With the session cache on (Redis), verified access tokens are remembered for the same bound (verified-access-memo.ts).
  const verifier = memoizeAccessTokens(createTokenVerifier(deps.keys, clock, { issuer: config.jwt.issuer, audience: config.jwt.audience }), clock, {
    ttlMs: config.redisUrl ? config.sessionCacheTtlMs : 0,
  });
  const tokens = createEmailTokenService({ db, clock });
  // Live sessions served from memory for SESSION_CACHE_TTL_MS, invalidated across instances through Redis.
  const sessionCache = sessionCacheFor(config, app.log);
  app.addHook('onReady', () => sessionCache.start());
  app.addHook('onClose', () => sessionCache.stop());
  const sessions = createSessionService({
    cache: sessionCache.cache,
    db,
    clock,
    signer,
    verifier,
    refreshTokenDays: config.jwt.refreshTokenDays,
    refreshReuseGraceSeconds: config.jwt.refreshReuseGraceSeconds,
    metrics,
    grantsOf: (userId, tx) => rbac.grantsOf(userId, tx),
    audit,
    emailTokens: tokens,
  });
  const outbox = createOutboxService({ db, clock, box: createSecretBox(deps.keys) });
  // Social sign-in is built after accounts (it needs them); the account notices list its providers.
  const late: { social?: SocialService } = {};
  const mail = createAccountMail({
    connectedProviders: (tx, userId) => late.social?.connectedProviders(tx, userId) ?? Promise.resolve([]),
    tokens,
    outbox,
    settings: {
      confirmTtlSeconds: config.email.confirmTtlSeconds,
      passwordResetTtlSeconds: config.email.passwordResetTtlSeconds,
      caps: { intervalSeconds: config.email.resendIntervalSeconds, hourlyLimit: config.email.hourlyLimit },
    },
  });
  // Accounts and MFA need each other (sign-in asks MFA; MFA checks passwords): the gate resolves late.
  let mfa: MfaService | null = null;
  const secondFactor = {
    required: (userId: string) => (mfa as MfaService).required(userId),
    challenge: (userId: string, amr: string[]) => (mfa as MfaService).challenge(userId, amr),
  };
  const accounts = createAccountService({
    db,
    clock,
    hasher,
    sessions,
    mail,
    tokens,
    metrics,
    secondFactor,
    assignDefaultRole: (tx, userId) => rbac.assignDefault(tx, userId),
    keepAnAdmin: (tx, userId) => rbac.keepAnAdmin(tx, userId),
    audit,
    requireEmailVerification: config.requireEmailVerification,
    ...(signInGuard ? { guard: signInGuard } : {}),
    registrationEnumerationProtection: config.registrationEnumerationProtection,
  });
  mfa = createMfaService({
    db,
    clock,
    box: createStaticBox(deps.mfaKey, 'mfa'),
    accounts,
    sessions,
    audit,
    mail,
    settings: {
      issuer: config.appName,
      reauthSeconds: config.mfa.reauthSeconds,
      maxFailures: config.mfa.maxFailures,
      failureWindowSeconds: config.mfa.failureWindowSeconds,
      challengeSeconds: config.mfa.challengeSeconds,
    },
  });

  // Email leaves through the outbox: a relay to the job queue, or the server itself without Redis.
  const sender = createEmailSender(config, { database: deps.database, keys: deps.keys, clock, outbox, logger: app.log, ...(redisNotice ? { redisNotice: redisNotice.connection() } : {}) });
  app.addHook('onReady', async () => sender.start());
  app.addHook('onClose', () => sender.stop());

  registerMetrics(app, {
    metrics,
    hashQueueDepth: () => hasher.queueDepth,
    outbox: () => outbox.backlog(),
    pool: deps.database.kind === 'postgres' ? () => deps.database.poolStats() ?? { total: 0, idle: 0, waiting: 0 } : null,
    workerCrashes: deps.workerCrashes ?? null,
    now: () => clock.now(),
    token: config.metricsToken,
  });
  await app.register(healthRoutes, { pingDatabase: () => deps.database.ping(), pingRedis: sender.redis?.ping ?? null });
  await app.register(discoveryRoutes, { config, keys: deps.keys });
  // Third-party sign-in (docs/social-sign-in.md): providers from config, the account rules, and the web flow's one-time codes.
  const social = createSocialService({
    db,
    clock,
    registry: createProviderRegistry(config.social, clock),
    accounts,
    sessions,
    mail,
    audit,
    assignDefaultRole: (tx, userId) => rbac.assignDefault(tx, userId),
    secondFactor,
    requireEmailVerification: config.requireEmailVerification,
    reauthSeconds: config.mfa.reauthSeconds,
  });
  late.social = social;
  const flows = createEmailFlows({ db, clock, hasher, sessions, tokens, mail, audit, identities: social, ...(signInGuard ? { signInGuard } : {}) });
  const webFlow = createWebFlow({ db, clock, social, accounts, sessions, audit, publicUrl: config.publicUrl, redirectAllowlist: config.social.redirectAllowlist });
  await app.register(tokenRoutes, { accounts, sessions, socialCodes: webFlow });
  await app.register(socialRoutes, { social, webFlow, sessions, publicUrl: config.publicUrl });
  // RFC 7662 introspection exists only for the clients of INTROSPECTION_CLIENTS (404 otherwise).
  if (config.introspection.clients.length) {
    const introspection = createIntrospectionService({ sessions, clients: config.introspection.clients, issuer: config.jwt.issuer });
    await app.register(introspectionRoutes, { introspection });
  }
  await app.register(accountRoutes, { accounts, sessions });
  await app.register(sessionRoutes, { sessions });
  await app.register(mfaRoutes, { mfa, sessions });
  await app.register(auditRoutes, { audit, sessions });
  const admin = createAdminService({ db, accounts, rbac, sessions, mfa, audit, mail, defaultRole: config.defaultRole, identitiesOf: (id) => social.listIdentities(id) });
  await app.register(adminRoutes, { admin, sessions, grantsOf: (userId) => rbac.grantsOf(userId) });
  // For the CLI (tessera users …): the same services, no HTTP.
  app.decorate('services', { admin });
  await app.register(emailRoutes, {
    accounts,
    flows,
    sessions,
    appName: config.appName,
    emailConfirmedRedirectUrl: config.email.emailConfirmedRedirectUrl,
    passwordResetUrl: config.email.passwordResetUrl,
  });
  return app;
}
