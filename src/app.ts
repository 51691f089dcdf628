import formbody from '@fastify/formbody';
import helmet from '@fastify/helmet';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { DestinationStream } from 'pino';
import type { Config } from './config.js';
import { createAccountMail } from './features/accounts/account-mail.js';
import { createEmailFlows } from './features/accounts/email-flows.js';
import { emailRoutes } from './features/accounts/email-routes.js';
import { accountRoutes } from './features/accounts/routes.js';
import { createAccountService } from './features/accounts/service.js';
import { discoveryRoutes } from './features/discovery/routes.js';
import { createEmailSender } from './features/email/sender.js';
import { createEmailTokenService } from './features/email-tokens/service.js';
import { healthRoutes } from './features/health/routes.js';
import { createOutboxService } from './features/outbox/service.js';
import { sessionRoutes } from './features/sessions/routes.js';
import { createSessionService } from './features/sessions/service.js';
import { createTokenSigner } from './features/tokens/token-signer.js';
import { createTokenVerifier } from './features/tokens/token-verifier.js';
import { tokenRoutes } from './features/tokens/routes.js';
import { registerErrorHandling } from './http/error-handler.js';
import { registerMetrics } from './http/metrics.js';
import { registerRequestLog, requestId } from './http/request-log.js';
import { registerOpenApi } from './http/openapi.js';
import { systemClock, type Clock } from './infra/clock.js';
import type { DatabaseHandle } from './infra/db/client.js';
import type { KeyRing } from './infra/keys.js';
import { loggerOptions } from './infra/logger.js';
import { createMetrics, instrumentHasher } from './infra/metrics.js';
import { createBcryptHasher, type PasswordHasher } from './infra/password-hasher.js';
import { createSecretBox, createStaticBox } from './infra/secret-box.js';
import { createAuditService } from './features/audit/service.js';
import { auditRoutes } from './features/audit/routes.js';
import { mfaRoutes } from './features/mfa/routes.js';
import { adminRoutes } from './features/admin/routes.js';
import { createAdminService, type AdminService } from './features/admin/service.js';
import { createRbacService, type RbacService } from './features/rbac/service.js';
import { createMfaService, type MfaService } from './features/mfa/service.js';

declare module 'fastify' {
  interface FastifyInstance {
    services: { admin: AdminService; rbac: RbacService };
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
}

/** Builds the HTTP application: framework plugins first, then features. Tests call this directly. */
export async function buildApp(config: Config, deps: AppDeps): Promise<FastifyInstance> {
  const clock = deps.clock ?? systemClock;
  const ownHasher = deps.hasher ? null : createBcryptHasher(config.passwords.bcryptRounds, config.passwords.bcryptConcurrency);
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
  await app.register(helmet, {
    global: true,
    // Over plain http (development) upgrading subresources to https would break /docs.
    contentSecurityPolicy: { directives: { upgradeInsecureRequests: config.publicUrl.startsWith('https:') ? [] : null } },
  });
  await app.register(formbody);
  // JSON and forms only: a text/plain body is a 415, not a string handed to the schema (and no CORS-simple bodies).
  app.removeContentTypeParser('text/plain');
  await registerOpenApi(app, config);

  const signer = createTokenSigner(deps.keys, clock, {
    issuer: config.jwt.issuer,
    audience: config.jwt.audience,
    accessTokenSeconds: config.jwt.accessTokenMinutes * 60,
  });
  const verifier = createTokenVerifier(deps.keys, clock, { issuer: config.jwt.issuer, audience: config.jwt.audience });
  const sessions = createSessionService({
    db,
    clock,
    signer,
    verifier,
    refreshTokenDays: config.jwt.refreshTokenDays,
    refreshReuseGraceSeconds: config.jwt.refreshReuseGraceSeconds,
    metrics,
    grantsOf: (userId, tx) => rbac.grantsOf(userId, tx),
    audit,
  });
  const outbox = createOutboxService({ db, clock, box: createSecretBox(deps.keys) });
  const tokens = createEmailTokenService({ db, clock });
  const mail = createAccountMail({
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
    metrics,
    secondFactor,
    assignDefaultRole: (tx, userId) => rbac.assignDefault(tx, userId),
    audit,
    requireEmailVerification: config.requireEmailVerification,
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
  const flows = createEmailFlows({ db, clock, hasher, sessions, tokens, mail, audit });

  // Email leaves through the outbox: a relay to the job queue, or the server itself without Redis.
  const sender = createEmailSender(config, { database: deps.database, keys: deps.keys, clock, outbox, logger: app.log });
  app.addHook('onReady', async () => sender.start());
  app.addHook('onClose', () => sender.stop());

  registerMetrics(app, {
    metrics,
    hashQueueDepth: () => hasher.queueDepth,
    outbox: () => outbox.stats(),
    queueJobs: sender.redis?.jobCounts ?? null,
    pool: deps.database.kind === 'postgres' ? () => deps.database.poolStats() ?? { total: 0, idle: 0, waiting: 0 } : null,
    now: () => clock.now(),
    token: config.metricsToken,
  });
  await app.register(healthRoutes, { pingDatabase: () => deps.database.ping(), pingRedis: sender.redis?.ping ?? null });
  await app.register(discoveryRoutes, { config, keys: deps.keys });
  await app.register(tokenRoutes, { accounts, sessions });
  await app.register(accountRoutes, { accounts, sessions });
  await app.register(sessionRoutes, { sessions });
  await app.register(mfaRoutes, { mfa, sessions });
  await app.register(auditRoutes, { audit, sessions });
  const admin = createAdminService({ db, accounts, rbac, sessions, mfa, audit, mail, defaultRole: config.defaultRole });
  await app.register(adminRoutes, { admin, sessions });
  // For the CLI (tessera users …): the same services, no HTTP.
  app.decorate('services', { admin, rbac });
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
