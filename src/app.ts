import formbody from '@fastify/formbody';
import helmet from '@fastify/helmet';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyInstance } from 'fastify';
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
import { registerOpenApi } from './http/openapi.js';
import { systemClock, type Clock } from './infra/clock.js';
import type { DatabaseHandle } from './infra/db/client.js';
import type { KeyRing } from './infra/keys.js';
import { loggerOptions } from './infra/logger.js';
import { createBcryptHasher, type PasswordHasher } from './infra/password-hasher.js';
import { createSecretBox } from './infra/secret-box.js';

export interface AppDeps {
  database: DatabaseHandle;
  keys: KeyRing;
  clock?: Clock;
  hasher?: PasswordHasher;
}

/** Builds the HTTP application: framework plugins first, then features. Tests call this directly. */
export async function buildApp(config: Config, deps: AppDeps): Promise<FastifyInstance> {
  const clock = deps.clock ?? systemClock;
  const hasher = deps.hasher ?? createBcryptHasher(config.passwords.bcryptRounds, config.passwords.bcryptConcurrency);
  const db = deps.database.db;

  const app = Fastify({
    logger: loggerOptions(config),
    trustProxy: config.trustProxy as boolean | string[],
    bodyLimit: config.bodyLimit,
    requestIdHeader: 'x-request-id',
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    // No type coercion: a JSON number or array is not a string (`{"email": 42}` is a 422, not "42").
    // Querystrings with non-string types would need a per-part validator compiler.
    ajv: { customOptions: { removeAdditional: true, allErrors: false, coerceTypes: false } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  // The app owns (and closes) only a hasher it created.
  if (!deps.hasher) app.addHook('onClose', () => hasher.close());
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
  registerMetrics(app, { hasher });

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
  });
  const outbox = createOutboxService({ clock, box: createSecretBox(deps.keys) });
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
  const accounts = createAccountService({ db, clock, hasher, sessions, mail, requireEmailVerification: config.requireEmailVerification });
  const flows = createEmailFlows({ db, clock, hasher, sessions, tokens, mail });

  // Email leaves through the outbox: a relay to the job queue, or the server itself without Redis.
  const sender = createEmailSender(config, { database: deps.database, keys: deps.keys, clock, outbox, logger: app.log });
  app.addHook('onReady', async () => sender.start());
  app.addHook('onClose', () => sender.stop());

  await app.register(healthRoutes, { pingDatabase: () => deps.database.ping() });
  await app.register(discoveryRoutes, { config, keys: deps.keys });
  await app.register(tokenRoutes, { accounts, sessions });
  await app.register(accountRoutes, { accounts, sessions });
  await app.register(sessionRoutes, { sessions });
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
