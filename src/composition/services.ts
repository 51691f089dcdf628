import { createHmac } from 'node:crypto';
import type { Config } from '../config/index.js';
import { createAccountMail } from '../features/accounts/account-mail.js';
import { createEmailFlows } from '../features/accounts/email-flows.js';
import { createAccountService } from '../features/accounts/service.js';
import { createSignInGuard } from '../features/accounts/sign-in-guard.js';
import { createAdminService } from '../features/admin/service.js';
import { createAuditService } from '../features/audit/service.js';
import { backchannelNotices } from '../features/backchannel/post-notice.js';
import { createBackchannelLogout, type BackchannelLogout } from '../features/backchannel/service.js';
import { createClientService } from '../features/clients/service.js';
import { createEmailSender, createOutboxService, type EmailSender } from '../features/mail/index.js';
import { createEmailSignInService } from '../features/email-sign-in/service.js';
import { createEmailTokenService } from '../features/email-tokens/service.js';
import { createIntrospectionService } from '../features/introspection/service.js';
import { createMfaService } from '../features/mfa/service.js';
import { createPasskeyService, type PasskeyService } from '../features/passkeys/service.js';
import type { ClientMeta } from '../features/sessions/service.js';
import { createSecondFactor } from '../features/mfa/second-factor.js';
import { createBrowserSessions } from '../features/oidc/browser-session.js';
import { createCodeExchange } from '../features/oidc/code-exchange.js';
import { createEndSession } from '../features/oidc/end-session.js';
import { createPasswordlessFlow } from '../features/oidc/passwordless.js';
import { createOidcFlow } from '../features/oidc/service.js';
import { createPushedRequests } from '../features/oidc/pushed-requests.js';
import { createRbacService } from '../features/rbac/service.js';
import { createSessionService } from '../features/sessions/service.js';
import { createProviderRegistry } from '../features/social/registry.js';
import { createSocialService, type SocialService } from '../features/social/service.js';
import { createWebFlow } from '../features/social/web-flow.js';
import { createTokenSigner } from '../features/sessions/token-signer.js';
import { createTokenVerifier } from '../features/sessions/token-verifier.js';
import { createUserinfoService } from '../features/userinfo/service.js';
import { memoizeAccessTokens } from '../features/sessions/verified-access-memo.js';
import { createMetrics, instrumentHasher } from '../infra/metrics.js';
import { createSecretBox, createStaticBox } from '../infra/secret-box.js';
import type { Infra } from './infra.js';

export interface ServicesOptions {
  /**
   * The server sends the outbox's email (a relay to the queue, or itself without
   * Redis); the CLI only writes outbox rows, which a server or worker sends.
   */
  sendEmail?: boolean;
}

export type Services = ReturnType<typeof createServices>;

/**
 * Builds every service of Tessera once, over `infra`: the graph the HTTP app
 * (app.ts), the CLI and the tests share. No Fastify here. `start` starts the
 * background work (the email sender, the shared counters); `close` stops it and
 * closes what `infra` created, in that order (the database stays with its opener).
 */
export function createServices(config: Config, infra: Infra, opts: ServicesOptions = {}) {
  const { database, keys, clock } = infra;
  const db = database.db;
  const metrics = createMetrics();
  const hasher = instrumentHasher(infra.hasher, metrics.hashSeconds);
  const rbac = createRbacService({ db, clock, defaultRole: config.defaultRole });
  const audit = createAuditService({ db, clock });

  const bruteForce = config.rateLimits.bruteForce;
  const signInGuard =
    infra.counters && bruteForce.enabled
      ? createSignInGuard({ store: infra.counters.store, settings: bruteForce, throttled: (limit) => metrics.rateLimited.inc({ limit }) })
      : undefined;

  const signer = createTokenSigner(keys, clock, {
    algorithm: config.jwt.algorithm,
    issuer: config.jwt.issuer,
    audience: config.jwt.audience,
    accessTokenSeconds: config.jwt.accessTokenMinutes * 60,
  });
  // With the session cache on (Redis), verified access tokens are remembered for the same bound (verified-access-memo.ts).
  const verifier = memoizeAccessTokens(createTokenVerifier(keys, clock, { issuer: config.jwt.issuer, audience: config.jwt.audience }), clock, {
    ttlMs: infra.sessionCache.enabled ? config.sessionCacheTtlMs : 0,
  });
  const emailTokens = createEmailTokenService({ db, clock });
  // Built after the clients and the outbox it needs; every ended session goes through it (back-channel logout).
  const lateLogout: { backchannel?: BackchannelLogout } = {};
  const sessions = createSessionService({
    onEnded: (tx, ended) => lateLogout.backchannel?.sessionsEnded(tx, ended) ?? Promise.resolve(),
    cache: infra.sessionCache.cache,
    db,
    clock,
    signer,
    verifier,
    refreshTokenDays: config.jwt.refreshTokenDays,
    refreshReuseGraceSeconds: config.jwt.refreshReuseGraceSeconds,
    metrics,
    grantsOf: (userId, tx) => rbac.grantsOf(userId, tx),
    audit,
    emailTokens,
  });
  const outbox = createOutboxService({ db, clock, box: createSecretBox(keys) });
  // Social sign-in is built after accounts (it needs them); the account notices list its providers.
  const late: { social?: SocialService } = {};
  const mail = createAccountMail({
    connectedProviders: (tx, userId) => late.social?.connectedProviders(tx, userId) ?? Promise.resolve([]),
    tokens: emailTokens,
    outbox,
    settings: {
      confirmTtlSeconds: config.email.confirmTtlSeconds,
      passwordResetTtlSeconds: config.email.passwordResetTtlSeconds,
      caps: { intervalSeconds: config.email.resendIntervalSeconds, hourlyLimit: config.email.hourlyLimit },
    },
  });
  // Passkeys are built after accounts and MFA (they need both); the second step asks them late.
  const later: { passkeys?: PasskeyService } = {};
  const passkeySecondStep = {
    has: (userId: string) => later.passkeys?.has(userId) ?? Promise.resolve(false),
    secondFactorOptions: (userId: string) => (later.passkeys as PasskeyService).secondFactorOptions(userId),
    verifySecondFactor: (userId: string, credential: never, meta: ClientMeta) =>
      (later.passkeys as PasskeyService).verifySecondFactor(userId, credential, meta),
  };
  // Sign-in asks MFA (the second factor, built without accounts); MFA checks passwords through accounts.
  const secondFactor = createSecondFactor({ db, clock, challengeSeconds: config.mfa.challengeSeconds, hasPasskey: passkeySecondStep.has });
  const accounts = createAccountService({
    db,
    clock,
    hasher,
    sessions,
    mail,
    tokens: emailTokens,
    metrics,
    secondFactor,
    assignDefaultRole: (tx, userId) => rbac.assignDefault(tx, userId),
    keepAnAdmin: (tx, userId) => rbac.keepAnAdmin(tx, userId),
    audit,
    requireEmailVerification: config.requireEmailVerification,
    ...(signInGuard ? { guard: signInGuard } : {}),
    registrationEnumerationProtection: config.registrationEnumerationProtection,
  });
  const mfa = createMfaService({
    db,
    clock,
    box: createStaticBox(infra.mfaKey, 'mfa'),
    accounts,
    sessions,
    audit,
    mail,
    passkeys: passkeySecondStep,
    settings: {
      issuer: config.appName,
      reauthSeconds: config.mfa.reauthSeconds,
      maxFailures: config.mfa.maxFailures,
      failureWindowSeconds: config.mfa.failureWindowSeconds,
      challengeSeconds: config.mfa.challengeSeconds,
    },
  });
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
    lockPasskeys: (tx, userId) => (later.passkeys as PasskeyService).lockCount(tx, userId),
  });
  late.social = social;
  // Passkeys (docs/passkeys.md): registration, management and sign-in.
  const passkeys = createPasskeyService({
    db,
    clock,
    settings: config.webauthn,
    reauthSeconds: config.mfa.reauthSeconds,
    accounts,
    sessions,
    audit,
    mail,
    secondFactor,
    identityCount: async (tx, userId) => (await social.connectedProviders(tx, userId)).length,
    lookalikeSecret: createHmac('sha256', infra.mfaKey).update('tessera webauthn look-alike credentials').digest(),
    metrics,
  });
  later.passkeys = passkeys;
  // Sign-in by an emailed code or link (EMAIL_SIGN_IN_ENABLED; docs/passkeys.md).
  const emailSignIn = createEmailSignInService({
    db,
    clock,
    settings: config.emailSignIn,
    codeKey: createHmac('sha256', infra.mfaKey).update('tessera email sign-in codes').digest(),
    accounts,
    sessions,
    mail,
    audit,
    identities: social,
    secondFactor,
    ...(signInGuard ? { guard: signInGuard } : {}),
    metrics,
  });
  const flows = createEmailFlows({
    db,
    clock,
    hasher,
    sessions,
    tokens: emailTokens,
    mail,
    audit,
    identities: social,
    ...(signInGuard ? { signInGuard } : {}),
  });
  const webFlow = createWebFlow({
    db,
    clock,
    social,
    accounts,
    sessions,
    audit,
    publicUrl: config.publicUrl,
    // The hosted pages' provider buttons come back to Tessera itself (docs/openid-provider.md "Hosted pages").
    redirectAllowlist: [...config.social.redirectAllowlist, `${config.publicUrl}/auth/ui/social-return`],
  });
  // RFC 7662 introspection: the clients of INTROSPECTION_CLIENTS, and registered confidential clients (their own tokens).
  const introspection = createIntrospectionService({ sessions, clients: config.introspection.clients, issuer: config.jwt.issuer });
  // The OAuth client registry (docs/clients.md): /admin/clients, and client authentication at the token endpoint.
  const clients = createClientService({
    db,
    clock,
    audit,
    acting: (tx, actorId, permission) => rbac.actingAs(tx, actorId, permission),
    sessions,
    assertionAudiences: [`${config.publicUrl}/auth/token`, config.jwt.issuer],
  });
  // OpenID Connect back-channel logout (docs/openid-provider.md): a notice per ended session of a client with a URI.
  lateLogout.backchannel = createBackchannelLogout({ urisOf: (tx, ids) => clients.backchannelUris(tx, ids), outbox });
  // OpenID Connect userinfo (docs/openid-provider.md): the claims of the token's scopes, read now.
  const userinfo = createUserinfoService({ sessions, profileOf: (userId) => accounts.getProfile(userId) });
  // The OpenID Provider (docs/openid-provider.md): the authorization endpoint and hosted pages over the same accounts, MFA and sessions.
  const findClient = async (clientId: string) => (clientId.length <= 256 ? await clients.find(clientId) : null);
  const browserSessions = createBrowserSessions({ db, clock, sessions });
  const oidc = createOidcFlow({
    db,
    clock,
    issuer: config.jwt.issuer,
    findClient,
    accounts,
    requireEmailVerification: config.requireEmailVerification,
    mfa,
    secondFactor,
    browserSessions,
    socialCodes: webFlow,
    socialReturnUrl: `${config.publicUrl}/auth/ui/social-return`,
    sessions,
    audit,
  });
  // Pushed authorization requests (RFC 9126): /auth/par, and their request_uri at /auth/authorize.
  const pushedRequests = createPushedRequests({ db, clock, findClient });
  // Passkeys and email codes on the hosted sign-in page (docs/openid-provider.md): the same services as the API.
  const passwordless = createPasswordlessFlow({ flow: oidc, passkeys, emailSignIn });
  const oidcCodes = createCodeExchange({ db, clock, signer, sessions, accounts, audit, accessTokenSeconds: config.jwt.accessTokenMinutes * 60 });
  const endSession = createEndSession({ db, keys, issuer: config.jwt.issuer, findClient, browserSessions, audit });
  const admin = createAdminService({
    db,
    accounts,
    rbac,
    sessions,
    mfa,
    audit,
    mail,
    defaultRole: config.defaultRole,
    identitiesOf: (id) => social.listIdentities(id),
  });

  // Email leaves through the outbox: a relay to the job queue, or the server itself without Redis.
  const sender: EmailSender | null = opts.sendEmail
    ? createEmailSender(config, {
        database,
        keys,
        clock,
        outbox,
        logger: infra.logger,
        ...(infra.redisNotice ? { redisNotice: infra.redisNotice.connection() } : {}),
        notices: backchannelNotices({ keys, clock, issuer: config.jwt.issuer }),
      })
    : null;

  return {
    infra,
    metrics,
    hasher,
    rbac,
    audit,
    signInGuard,
    signer,
    verifier,
    emailTokens,
    sessions,
    outbox,
    mail,
    accounts,
    mfa,
    social,
    passkeys,
    emailSignIn,
    flows,
    webFlow,
    introspection,
    userinfo,
    admin,
    clients,
    browserSessions,
    oidc,
    pushedRequests,
    passwordless,
    oidcCodes,
    endSession,
    sender,
    /** Starts the background work: the shared counters answer, the email sender runs. */
    async start(): Promise<void> {
      await infra.counters?.ready();
      await infra.sessionCache.start();
      sender?.start();
    },
    /** Stops the email sender, then closes what infra created (counters, hashing threads). */
    async close(): Promise<void> {
      await sender?.stop();
      await infra.close();
    },
  };
}
