import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { AppError } from '../../errors.js';
import { clientMeta } from '../../http/client-meta.js';
import { cookieName, readCookie, setCookie } from '../../http/cookies.js';
import { createCsrf } from '../../http/csrf.js';
import { noStore } from '../../http/no-store.js';
import type { PageTheme } from '../../http/page-layout.js';
import { NoContent, errorResponses, secured } from '../../http/schemas.js';
import { authenticate, caller } from '../sessions/authenticate.js';
import type { SessionService } from '../sessions/service.js';
import type { RawParams } from './authorization-request.js';
import type { BrowserSessions } from './browser-session.js';
import type { EndSession } from './end-session.js';
import type { PushedRequests } from './pushed-requests.js';
import {
  consentPage,
  endSessionPage,
  hostedErrorPage,
  messagePage,
  mfaPage,
  selectAccountPage,
  signInPage,
  signUpPage,
  signedOutPage,
  tooManyRequestsPage,
  type ProviderButton,
} from './pages.js';
import type { WebFlow } from '../social/web-flow.js';
import type { PasswordlessFlow } from './passwordless.js';
import { passwordlessRoutes } from './passwordless-routes.js';
import { s256, socialVerifier, type HostedPage, type OidcFlow, type Outcome, type PageView } from './service.js';

export interface OidcRoutesOptions {
  flow: OidcFlow;
  /** RFC 9126: a request_uri at /auth/authorize stands for the parameters its client pushed. */
  pushed: Pick<PushedRequests, 'resolve'>;
  endSession: EndSession;
  browserSessions: BrowserSessions;
  sessions: SessionService;
  publicUrl: string;
  theme: PageTheme;
  /** How long the browser-session cookie is kept (the session row's own lifetime). */
  browserSessionSeconds: number;
  clientName: (clientId: string) => Promise<string | null>;
  /** The configured third-party providers (buttons on the sign-in page) and the web flow that starts their sign-in. */
  providers: () => ProviderButton[];
  webFlow?: Pick<WebFlow, 'authorize'>;
  /** Passkeys and email codes on the sign-in page (passwordless-routes.ts). */
  passwordless?: PasswordlessFlow;
}

/** The web flow's browser-binding cookie (features/social/routes.ts sets the same): sent back to the provider's callback. */
const BINDING_COOKIE = 'tessera_oauth';

/** The hosted pages' CSP: nothing but this service's script (passkeys), stylesheet and images; forms post here, or (after a redirect) to the client. */
function csp(formTargets: string[] = []): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    "connect-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: https:",
    `form-action 'self'${formTargets.map((t) => ` ${t}`).join('')}`,
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join('; ');
}

/** What a CSP source must name for a form whose POST redirects to `uri` (Chromium checks form-action on redirects). */
function sourceOf(uri: string): string {
  const url = new URL(uri);
  return url.protocol === 'http:' || url.protocol === 'https:' ? url.origin : url.protocol;
}

const Handle = Type.Object({ request: Type.String({ maxLength: 100 }) });
const PageForm = Type.Object({
  csrf: Type.Optional(Type.String({ maxLength: 100 })),
  request: Type.String({ maxLength: 100 }),
  email: Type.Optional(Type.String({ maxLength: 320 })),
  password: Type.Optional(Type.String({ maxLength: 1024 })),
  code: Type.Optional(Type.String({ maxLength: 64 })),
  decision: Type.Optional(Type.String({ maxLength: 10 })),
  choice: Type.Optional(Type.String({ maxLength: 10 })),
  first_name: Type.Optional(Type.String({ maxLength: 100 })),
  last_name: Type.Optional(Type.String({ maxLength: 100 })),
});

const ConsentBody = Type.Object({
  client_id: Type.String(),
  client_name: Type.Union([Type.String(), Type.Null()]),
  scopes: Type.Array(Type.String()),
  created_at: Type.String({ format: 'date-time' }),
  updated_at: Type.String({ format: 'date-time' }),
});

export const oidcRoutes: FastifyPluginAsyncTypebox<OidcRoutesOptions> = async (app, opts) => {
  const { flow, endSession, browserSessions, theme } = opts;
  const https = opts.publicUrl.startsWith('https:');
  const csrf = createCsrf(opts.publicUrl);
  const ssoCookie = cookieName('tessera_session', https);
  const auth = authenticate(opts.sessions);

  const sso = (request: FastifyRequest) => browserSessions.find(readCookie(request, ssoCookie));
  const passwordlessButtons = opts.passwordless ? { passkeys: true, emailCode: opts.passwordless.emailEnabled() } : undefined;

  function html(reply: FastifyReply, status: number, body: string, formTargets: string[] = []) {
    // same-origin, not no-referrer: with no-referrer a browser sends `Origin: null` with the page's own forms, which the CSRF check refuses.
    return noStore(reply)
      .status(status)
      .header('content-security-policy', csp(formTargets))
      .header('referrer-policy', 'same-origin')
      .type('text/html; charset=utf-8')
      .send(body);
  }

  const errorPage = (reply: FastifyReply, status: number, code: string, message: string) => html(reply, status, hostedErrorPage(theme, code, message));

  // A browser on the hosted pages gets its 429 (a limit of config/limits.ts) as a page, Retry-After kept; anything else goes to the app's handler.
  app.setErrorHandler((error, request, reply) => {
    const url = request.routeOptions.url ?? '';
    if (!(error instanceof AppError && error.status === 429 && (url.startsWith('/auth/ui/') || url === '/auth/authorize'))) throw error;
    const wait = Math.max(1, Math.ceil(error.retryAfterSeconds ?? 60));
    const body = request.body as { request?: unknown } | null | undefined;
    const query = request.query as { request?: unknown } | null | undefined;
    const handle = [body?.request, query?.request].find((h): h is string => typeof h === 'string' && h.length > 0 && h.length <= 100) ?? null;
    return html(reply.header('retry-after', String(wait)), 429, tooManyRequestsPage(theme, error.code, wait, handle));
  });

  function render(reply: FastifyReply, page: HostedPage, view: PageView, key: string, error?: string) {
    const targets = [sourceOf(view.redirectUri)];
    const status = error ? 400 : 200;
    switch (page) {
      case 'sign-in':
        return html(reply, status, signInPage(theme, view, key, error, opts.webFlow ? opts.providers() : [], passwordlessButtons), targets);
      case 'sign-up':
        return html(reply, status, signUpPage(theme, view, key, error), targets);
      case 'mfa':
        return html(reply, status, mfaPage(theme, view, key, error), targets);
      case 'consent':
        return html(reply, status, consentPage(theme, view, key), targets);
      case 'select-account':
        return html(reply, status, selectAccountPage(theme, view, key), targets);
    }
  }

  async function respond(request: FastifyRequest, reply: FastifyReply, outcome: Outcome) {
    if (outcome.browser) setCookie(reply, ssoCookie, outcome.browser, { secure: https, maxAge: opts.browserSessionSeconds });
    switch (outcome.kind) {
      case 'redirect':
        return noStore(reply).redirect(outcome.location, 303);
      case 'page':
        return noStore(reply).redirect(`/auth/ui/${outcome.page}?request=${encodeURIComponent(outcome.handle)}`, 303);
      case 'error':
        return errorPage(reply, 400, outcome.code, outcome.message);
      case 'message':
        return html(reply, 200, messagePage(theme, outcome.title, outcome.message, outcome.handle));
      case 'form_error': {
        const key = csrf.current(request);
        const view = key ? await flow.view(outcome.handle, key, await sso(request)) : null;
        if (!view || !key) return errorPage(reply, 400, 'authorization_request_expired', outcome.message);
        return render(reply, outcome.page, view, key, outcome.message);
      }
    }
  }

  app.get(
    '/auth/authorize',
    {
      exposeHeadRoute: false,
      schema: {
        tags: ['openid'],
        summary: 'OpenID Connect authorization endpoint (authorization code + PKCE)',
        description: 'Redirects to the hosted sign-in pages, then back to the redirect_uri with `code`, `state` and `iss`. docs/openid-provider.md',
      },
    },
    async (request, reply) => {
      const key = csrf.ensure(request, reply);
      const params = await opts.pushed.resolve(request.query as RawParams);
      if (!params.ok) return errorPage(reply, 400, params.code, params.message);
      return respond(request, reply, await flow.authorize(params.params, key, await sso(request)));
    },
  );

  // A cross-site form POST carries no SameSite=Lax cookie: the same request again as a top-level GET, which does.
  app.post(
    '/auth/authorize',
    { schema: { tags: ['openid'], summary: 'The authorization endpoint by form POST (answered with a redirect to its GET)' } },
    async (request, reply) => {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries((request.body ?? {}) as RawParams)) for (const one of Array.isArray(v) ? v : [v ?? '']) params.append(k, one);
      return noStore(reply).redirect(`/auth/authorize?${params.toString()}`, 303);
    },
  );

  for (const page of ['sign-in', 'sign-up', 'mfa', 'consent', 'select-account'] as const) {
    app.get(`/auth/ui/${page}`, { schema: { hide: true, querystring: Handle } }, async (request, reply) => {
      const key = csrf.ensure(request, reply);
      const view = await flow.view(request.query.request, key, await sso(request));
      if (!view)
        return errorPage(
          reply,
          400,
          'authorization_request_expired',
          'This sign-in has expired or was already completed. Go back to the application and start again.',
        );
      if ((page === 'consent' || page === 'select-account') && !view.email)
        return noStore(reply).redirect(`/auth/ui/sign-in?request=${encodeURIComponent(view.handle)}`, 303);
      return render(reply, page, view, key);
    });
  }

  // A provider button: the social web flow with this request as its state and a verifier only this browser can derive; back at social-return.
  if (opts.webFlow) {
    const webFlow = opts.webFlow;
    app.get(
      '/auth/ui/social/:provider',
      { exposeHeadRoute: false, schema: { hide: true, params: Type.Object({ provider: Type.String({ maxLength: 64 }) }), querystring: Handle } },
      async (request, reply) => {
        const key = csrf.current(request);
        const view = key ? await flow.view(request.query.request, key, await sso(request)) : null;
        if (!view || !key)
          return errorPage(reply, 400, 'authorization_request_expired', 'This sign-in has expired. Go back to the application and start again.');
        const started = await webFlow.authorize(
          request.params.provider,
          {
            redirectUri: `${opts.publicUrl}/auth/ui/social-return`,
            appState: view.handle,
            codeChallenge: s256(socialVerifier(view.handle, key)),
            codeChallengeMethod: 'S256',
          },
          readCookie(request, BINDING_COOKIE),
        );
        const sameSite = started.responseMode === 'form_post' && https ? 'None' : 'Lax';
        reply.header('set-cookie', [
          ...[reply.getHeader('set-cookie') ?? []].flat().map(String),
          `${BINDING_COOKIE}=${started.binding}; Path=/auth/oauth/; Max-Age=600; HttpOnly; SameSite=${sameSite}${https ? '; Secure' : ''}`,
        ]);
        return noStore(reply).redirect(started.location, 303);
      },
    );

    app.get(
      '/auth/ui/social-return',
      {
        exposeHeadRoute: false,
        schema: {
          hide: true,
          querystring: Type.Object({
            state: Type.String({ maxLength: 100 }),
            code: Type.Optional(Type.String({ maxLength: 256 })),
            error: Type.Optional(Type.String({ maxLength: 100 })),
            error_description: Type.Optional(Type.String({ maxLength: 1000 })),
          }),
        },
      },
      async (request, reply) => {
        const q = request.query;
        const answer = { code: q.code, error: q.error, errorDescription: q.error_description };
        return respond(request, reply, await flow.socialSignIn(q.state, csrf.current(request), await sso(request), answer, clientMeta(request)));
      },
    );
  }

  /** Every form: this browser's CSRF value, from this service's own pages. */
  function checked(request: FastifyRequest, reply: FastifyReply, field: string | undefined): string | null {
    if (csrf.valid(request, field)) return csrf.current(request);
    void errorPage(reply, 403, 'csrf_token_invalid', 'This form was not sent from this browser’s sign-in page. Go back to the application and start again.');
    return null;
  }

  app.post('/auth/ui/sign-in', { schema: { hide: true, body: PageForm } }, async (request, reply) => {
    const key = checked(request, reply, request.body.csrf);
    if (!key) return reply;
    const b = request.body;
    return respond(request, reply, await flow.signIn(b.request, key, await sso(request), b.email ?? '', b.password ?? '', clientMeta(request)));
  });

  app.post('/auth/ui/sign-up', { schema: { hide: true, body: PageForm } }, async (request, reply) => {
    const key = checked(request, reply, request.body.csrf);
    if (!key) return reply;
    const b = request.body;
    const input = { email: b.email ?? '', password: b.password ?? '', firstName: b.first_name || null, lastName: b.last_name || null };
    return respond(request, reply, await flow.signUp(b.request, key, await sso(request), input, clientMeta(request)));
  });

  app.post('/auth/ui/mfa', { schema: { hide: true, body: PageForm } }, async (request, reply) => {
    const key = checked(request, reply, request.body.csrf);
    if (!key) return reply;
    return respond(request, reply, await flow.verifyCode(request.body.request, key, await sso(request), request.body.code ?? '', clientMeta(request)));
  });

  app.post('/auth/ui/consent', { schema: { hide: true, body: PageForm } }, async (request, reply) => {
    const key = checked(request, reply, request.body.csrf);
    if (!key) return reply;
    const allow = request.body.decision === 'allow';
    return respond(request, reply, await flow.consent(request.body.request, key, await sso(request), allow, clientMeta(request)));
  });

  app.post('/auth/ui/select-account', { schema: { hide: true, body: PageForm } }, async (request, reply) => {
    const key = checked(request, reply, request.body.csrf);
    if (!key) return reply;
    return respond(request, reply, await flow.selectAccount(request.body.request, key, await sso(request), request.body.choice === 'another'));
  });

  if (opts.passwordless) await app.register(passwordlessRoutes, { passwordless: opts.passwordless, flow, csrf, theme, sso, respond, html, checked, sourceOf });

  // RP-initiated logout: a GET (or a POST from the client) shows the confirmation; only its own POST, with the CSRF value, signs out.
  async function endSessionRequest(request: FastifyRequest, reply: FastifyReply, params: RawParams, confirmed: boolean) {
    const read = await endSession.read(params);
    if (!read.ok) return errorPage(reply, 400, read.code, read.message);
    const current = await sso(request);
    if (!confirmed) {
      const key = csrf.ensure(request, reply);
      const targets = read.redirectUri ? [sourceOf(read.redirectUri)] : [];
      return html(
        reply,
        200,
        endSessionPage(theme, key, { email: current?.email ?? null, clientName: read.client?.name ?? null, fields: read.fields }),
        targets,
      );
    }
    const location = await endSession.end(read, current, clientMeta(request));
    setCookie(reply, ssoCookie, '', { secure: https, maxAge: 0 });
    if (location) return noStore(reply).redirect(location, 303);
    return html(reply, 200, signedOutPage(theme));
  }

  app.get(
    '/auth/end-session',
    { schema: { tags: ['openid'], summary: 'RP-initiated logout: shows a confirmation (a GET signs no one out)' } },
    async (request, reply) => endSessionRequest(request, reply, request.query as RawParams, false),
  );

  app.post(
    '/auth/end-session',
    { schema: { tags: ['openid'], summary: 'RP-initiated logout: the confirmation form signs out (CSRF-checked); a client’s POST shows the confirmation' } },
    async (request, reply) => {
      const body = (request.body ?? {}) as RawParams;
      if (body.confirm === undefined) return endSessionRequest(request, reply, body, false);
      if (!csrf.valid(request, body.csrf))
        return errorPage(
          reply,
          403,
          'csrf_token_invalid',
          'This form was not sent from this browser’s sign-out page. Start the sign-out again from the application.',
        );
      return endSessionRequest(request, reply, body, true);
    },
  );

  app.get(
    '/users/me/consents',
    {
      preHandler: [auth],
      schema: {
        tags: ['users'],
        summary: 'The applications you allowed to use your account (consents of the hosted sign-in)',
        security: secured,
        response: { 200: Type.Array(ConsentBody), ...errorResponses(401) },
      },
    },
    async (request) => {
      const rows = await flow.listConsents(caller(request).token.sub);
      return Promise.all(
        rows.map(async (c) => ({
          client_id: c.clientId,
          client_name: await opts.clientName(c.clientId),
          scopes: c.scopes,
          created_at: c.createdAt.toISOString(),
          updated_at: c.updatedAt.toISOString(),
        })),
      );
    },
  );

  app.delete(
    '/users/me/consents/:clientId',
    {
      preHandler: [auth],
      schema: {
        tags: ['users'],
        summary: 'Withdraw a consent: the application must ask again at its next sign-in',
        security: secured,
        params: Type.Object({ clientId: Type.String({ maxLength: 256 }) }),
        response: { 204: NoContent, ...errorResponses(401, 404) },
      },
    },
    async (request, reply) => {
      await flow.revokeConsent(caller(request).token.sub, request.params.clientId, clientMeta(request));
      return reply.status(204).send(null);
    },
  );
};
