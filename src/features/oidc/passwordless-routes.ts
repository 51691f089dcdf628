/**
 * The hosted pages' passkey and email-code routes (docs/openid-provider.md "Passkeys and email
 * codes"), registered by oidcRoutes with its page helpers: every POST is CSRF-checked like the
 * other forms and bound to the pending request of this browser; a GET changes nothing.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { AppError } from '../../errors.js';
import { clientMeta } from '../../http/client-meta.js';
import type { Csrf } from '../../http/csrf.js';
import { noStore } from '../../http/no-store.js';
import type { PageTheme } from '../../http/page-layout.js';
import type { BrowserSession } from './browser-session.js';
import { PASSKEY_SCRIPT, PASSKEY_SCRIPT_PATH, emailCodePage, emailLinkPage } from './passwordless-pages.js';
import type { CodeForm, PasswordlessFlow } from './passwordless.js';
import type { OidcFlow, Outcome } from './service.js';

export interface PasswordlessRoutesDeps {
  passwordless: PasswordlessFlow;
  flow: Pick<OidcFlow, 'view'>;
  csrf: Csrf;
  theme: PageTheme;
  sso: (request: FastifyRequest) => Promise<BrowserSession | null>;
  /** oidcRoutes' own: the outcome as a redirect, page or error (sets the browser-session cookie). */
  respond: (request: FastifyRequest, reply: FastifyReply, outcome: Outcome) => Promise<unknown>;
  /** A page with the hosted pages' headers (CSP, referrer policy, no-store); `formTargets`: where its form may end up. */
  html: (reply: FastifyReply, status: number, body: string, formTargets?: string[]) => unknown;
  /** The CSRF check of a form: this browser's value, or null after answering 403. */
  checked: (request: FastifyRequest, reply: FastifyReply, field: string | undefined) => string | null;
  /** The CSP source a form whose POST redirects to `uri` must name. */
  sourceOf: (uri: string) => string;
}

const Field = (maxLength: number) => Type.Optional(Type.String({ maxLength }));
const PasskeyOptionsBody = Type.Object({ csrf: Field(100), request: Type.String({ maxLength: 100 }) });
const PasskeyForm = Type.Object({ csrf: Field(100), request: Type.String({ maxLength: 100 }), flow: Field(200), credential: Field(32768) });
/** The password form's fields come along ("Email me a code" is its second button); only the address is read. */
const EmailCodeForm = Type.Object({ csrf: Field(100), request: Type.String({ maxLength: 100 }), email: Field(320), code: Field(64) });
const LinkQuery = Type.Object({ token: Field(200), request: Field(100) });
const LinkForm = Type.Object({ csrf: Field(100), request: Type.String({ maxLength: 100 }), token: Field(200) });

export const passwordlessRoutes: FastifyPluginAsyncTypebox<PasswordlessRoutesDeps> = async (app, deps) => {
  const { passwordless, flow, csrf, theme, sso, respond, html, checked } = deps;

  /** The code form, or where the flow goes otherwise. */
  async function codeFormOr(request: FastifyRequest, reply: FastifyReply, key: string, result: Outcome | CodeForm) {
    if (result.kind !== 'code_form') return respond(request, reply, result);
    const view = await flow.view(result.handle, key, await sso(request));
    if (!view) return respond(request, reply, { kind: 'page', page: 'sign-in', handle: result.handle });
    return html(reply, result.error ? 400 : 200, emailCodePage(theme, view, key, result.email, result.error), [deps.sourceOf(view.redirectUri)]);
  }

  // The one script of the hosted pages: same origin (CSP script-src 'self'), cached for a day.
  app.get(PASSKEY_SCRIPT_PATH, { schema: { hide: true } }, async (_request, reply) =>
    reply
      .header('cache-control', 'public, max-age=86400')
      .header('x-content-type-options', 'nosniff')
      .type('text/javascript; charset=utf-8')
      .send(PASSKEY_SCRIPT),
  );

  // fetch() from the sign-in page: the options of a passkey flow bound to this request and this browser.
  app.post('/auth/ui/passkey/options', { schema: { hide: true, body: PasskeyOptionsBody } }, async (request, reply) => {
    if (!csrf.valid(request, request.body.csrf)) throw new AppError('csrf_token_invalid');
    const options = await passwordless.passkeyOptions(request.body.request, csrf.current(request), await sso(request));
    if (!options) throw new AppError('authorization_request_expired');
    return noStore(reply).send(options);
  });

  // The passkey form (filled by the script): the assertion → the browser session, and the request goes on.
  app.post('/auth/ui/passkey', { schema: { hide: true, body: PasskeyForm } }, async (request, reply) => {
    const key = checked(request, reply, request.body.csrf);
    if (!key) return reply;
    const b = request.body;
    return respond(request, reply, await passwordless.passkeySignIn(b.request, key, await sso(request), b.flow ?? '', b.credential ?? '', clientMeta(request)));
  });

  if (!passwordless.emailEnabled()) return;

  // "Email me a code" (the password form's second button): the code form, the same for any well-formed address.
  app.post('/auth/ui/email-code', { schema: { hide: true, body: EmailCodeForm } }, async (request, reply) => {
    const key = checked(request, reply, request.body.csrf);
    if (!key) return reply;
    return codeFormOr(request, reply, key, await passwordless.requestCode(request.body.request, key, await sso(request), request.body.email ?? ''));
  });

  app.post('/auth/ui/email-code/verify', { schema: { hide: true, body: EmailCodeForm } }, async (request, reply) => {
    const key = checked(request, reply, request.body.csrf);
    if (!key) return reply;
    const b = request.body;
    return codeFormOr(request, reply, key, await passwordless.verifyCode(b.request, key, await sso(request), b.email ?? '', b.code ?? '', clientMeta(request)));
  });

  // The emailed link of a code asked for on a hosted page: its page continues the request when it is pending in
  // this browser; anywhere else, the ordinary link page (/auth/email-code/link). Neither changes anything.
  app.get('/auth/ui/email-link', { schema: { hide: true, querystring: LinkQuery } }, async (request, reply) => {
    const token = request.query.token ?? '';
    const handle = request.query.request ?? '';
    const key = csrf.current(request);
    const current = await sso(request);
    const view = key && (await passwordless.linkContinues(handle, key, current, token)) ? await flow.view(handle, key, current) : null;
    if (!view || !key) return noStore(reply).redirect(`/auth/email-code/link?token=${encodeURIComponent(token)}`, 303);
    return html(reply, 200, emailLinkPage(theme, view, key, token), [deps.sourceOf(view.redirectUri)]);
  });

  app.post('/auth/ui/email-link', { schema: { hide: true, body: LinkForm } }, async (request, reply) => {
    const key = checked(request, reply, request.body.csrf);
    if (!key) return reply;
    const b = request.body;
    return respond(request, reply, await passwordless.linkSignIn(b.request, key, await sso(request), b.token ?? '', clientMeta(request)));
  });
};
