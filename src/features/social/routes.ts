import { readCookie } from '../../http/cookies.js';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { AppError, OAuthError } from '../../errors.js';
import { authenticate, caller } from '../sessions/authenticate.js';
import { clientMeta } from '../../http/client-meta.js';
import { NoContent, OAuthErrorBody, TokenResponseBody, errorResponses, secured } from '../../http/schemas.js';
import type { SessionService } from '../sessions/service.js';
import { AuthorizeQuery, CallbackParams, IdentitiesBody, IdentityBody, NativeTokenBody, ProviderParams, ProvidersBody, toIdentityBody } from './schemas.js';
import type { SocialService } from './service.js';
import type { WebFlow } from './web-flow.js';
import { noStore } from '../../http/no-store.js';

export interface SocialRoutesOptions {
  social: SocialService;
  webFlow: WebFlow;
  sessions: SessionService;
  publicUrl: string;
}

/**
 * Binds a web sign-in attempt to the browser that started it: a random value
 * (its hash is in the state row), HttpOnly, only sent to /auth/oauth/, 10 minutes.
 */
const BINDING_COOKIE = 'tessera_oauth';
const BINDING_MAX_AGE = 600;

/** No caching, and no Referer carrying the code or state to whatever the next page loads. */
function private_(reply: FastifyReply): FastifyReply {
  return noStore(reply).header('referrer-policy', 'no-referrer');
}

export const socialRoutes: FastifyPluginAsyncTypebox<SocialRoutesOptions> = async (app, { social, webFlow, sessions, publicUrl }) => {
  const auth = authenticate(sessions);
  const https = publicUrl.startsWith('https:');

  /**
   * Over https, a provider answering with a cross-site form_post (Apple) needs
   * SameSite=None for the browser to send the cookie with it; every other
   * provider comes back with a top-level GET, which SameSite=Lax allows.
   */
  function bindingCookie(value: string, formPost: boolean): string {
    const sameSite = formPost && https ? 'None' : 'Lax';
    return `${BINDING_COOKIE}=${value}; Path=/auth/oauth/; Max-Age=${BINDING_MAX_AGE}; HttpOnly; SameSite=${sameSite}${https ? '; Secure' : ''}`;
  }

  app.get(
    '/auth/providers',
    {
      schema: { tags: ['auth'], summary: 'The enabled third-party sign-in providers', response: { 200: ProvidersBody } },
    },
    async () => ({
      providers: social.providers().map((p) => ({ id: p.id, name: p.displayName, web: true, native: p.nativeInput })),
    }),
  );

  app.get(
    '/auth/oauth/:provider/authorize',
    {
      // A HEAD would start (and store) a sign-in attempt too.
      exposeHeadRoute: false,
      schema: {
        tags: ['auth'],
        summary: 'Web sign-in with a provider: redirects (302) to it',
        description:
          "Requires the app's PKCE challenge (`code_challenge`, `code_challenge_method=S256`; 400 `pkce_required` without). " +
          'Sets an HttpOnly cookie binding the attempt to this browser, then redirects to the provider with state, PKCE S256 and nonce. ' +
          "The provider comes back to /auth/oauth/:provider/callback, which redirects to `redirect_uri` with `?code=…` (and the app's `state`), or `?error=…`.",
        params: ProviderParams,
        querystring: AuthorizeQuery,
        response: { 302: Type.Null({ description: 'To the provider (Location)' }), ...errorResponses(400, 404, 422) },
      },
    },
    async (request, reply) => {
      const q = request.query;
      const result = await webFlow.authorize(
        request.params.provider,
        { redirectUri: q.redirect_uri, appState: q.state, codeChallenge: q.code_challenge, codeChallengeMethod: q.code_challenge_method },
        readCookie(request, BINDING_COOKIE),
      );
      private_(reply).header('set-cookie', bindingCookie(result.binding, result.responseMode === 'form_post'));
      return reply.redirect(result.location, 302);
    },
  );

  const callbackCommon = {
    tags: ['auth'],
    description: "Checks the state, exchanges the code, then redirects to the app's redirect_uri with a one-time code, or with `error` (see docs/errors.md).",
    params: ProviderParams,
    response: {
      302: Type.Null({ description: "To the app's redirect_uri (Location)" }),
      303: Type.Null({ description: "To the app's redirect_uri (Location)" }),
      ...errorResponses(400, 404),
    },
  };

  async function callback(provider: string, request: FastifyRequest, reply: FastifyReply, params: Record<string, string | undefined>, status: 302 | 303) {
    private_(reply);
    const clean = Object.fromEntries(Object.entries(params).filter((e): e is [string, string] => typeof e[1] === 'string'));
    const location = await webFlow.callback(provider, clean, readCookie(request, BINDING_COOKIE), clientMeta(request));
    return reply.redirect(location, status);
  }

  app.get(
    '/auth/oauth/:provider/callback',
    {
      // The provider's redirect is a GET that uses up the attempt (inherent to OAuth); a HEAD must not.
      exposeHeadRoute: false,
      schema: { ...callbackCommon, summary: 'Where the provider sends the browser back (query)', querystring: CallbackParams },
    },
    async (request, reply) => callback(request.params.provider, request, reply, request.query, 302),
  );
  // 303: the browser follows a form_post answer with a GET.
  app.post(
    '/auth/oauth/:provider/callback',
    {
      schema: {
        ...callbackCommon,
        summary: 'Where the provider sends the browser back (form_post, e.g. Apple)',
        body: CallbackParams,
        consumes: ['application/x-www-form-urlencoded'],
      },
    },
    async (request, reply) => callback(request.params.provider, request, reply, request.body, 303),
  );

  app.post(
    '/auth/oauth/:provider/token',
    {
      config: { oauthErrors: true },
      schema: {
        tags: ['auth'],
        summary: 'Native sign-in (React Native): a provider token → Tessera tokens',
        description:
          '`{id_token, nonce?}` for OpenID providers (Google, Apple, generic; `aud` may be any configured client id), `{access_token}` for GitHub and Facebook. ' +
          'Token problems are RFC 6749 errors (`invalid_grant`); account rules answer `identity_not_linked` (409) or `provider_email_missing` (422).',
        params: ProviderParams,
        body: NativeTokenBody,
        response: { 200: TokenResponseBody, 400: OAuthErrorBody, 403: OAuthErrorBody, ...errorResponses(404, 409, 422, 503) },
      },
    },
    async (request, reply) => {
      const b = request.body;
      const p = social.provider(request.params.provider);
      const field = p.nativeInput;
      if (!(field === 'id_token' ? b.id_token : b.access_token)) throw new OAuthError('invalid_request', `Missing parameter: ${field}.`);
      const tokens = await social.signInWithProviderToken(
        p.id,
        { idToken: b.id_token, accessToken: b.access_token, nonce: b.nonce, firstName: b.first_name, lastName: b.last_name },
        clientMeta(request),
      );
      return noStore(reply).send(tokens);
    },
  );

  app.get(
    '/users/me/identities',
    {
      preHandler: [auth],
      schema: {
        tags: ['users'],
        summary: 'The providers connected to your account',
        security: secured,
        response: { 200: IdentitiesBody, ...errorResponses(401) },
      },
    },
    async (request) => ({ identities: (await social.listIdentities(caller(request).token.sub)).map(toIdentityBody) }),
  );

  app.post(
    '/users/me/identities/:provider',
    {
      preHandler: [auth],
      schema: {
        tags: ['users'],
        summary: 'Connect a provider to your account (a token from its SDK, as for native sign-in)',
        description: 'Needs a sign-in within MFA_REAUTH_WINDOW (403 reauthentication_required otherwise).',
        security: secured,
        params: ProviderParams,
        body: NativeTokenBody,
        response: { 201: IdentityBody, 200: IdentityBody, ...errorResponses(400, 401, 403, 404, 409, 503) },
      },
    },
    async (request, reply) => {
      const { token, session } = caller(request);
      const b = request.body;
      const p = social.provider(request.params.provider);
      if (!(p.nativeInput === 'id_token' ? b.id_token : b.access_token)) {
        throw new AppError('provider_token_invalid', `Send the ${p.displayName} ${p.nativeInput}.`, [{ field: p.nativeInput, message: 'required' }]);
      }
      const { identity, created } = await social.link(
        token.sub,
        session.createdAt,
        p.id,
        { idToken: b.id_token, accessToken: b.access_token, nonce: b.nonce },
        clientMeta(request),
      );
      return reply.status(created ? 201 : 200).send(toIdentityBody(identity));
    },
  );

  app.delete(
    '/users/me/identities/:provider',
    {
      preHandler: [auth],
      schema: {
        tags: ['users'],
        summary: 'Disconnect a provider (refused when it is your last way to sign in)',
        security: secured,
        params: ProviderParams,
        response: { 204: NoContent, ...errorResponses(401, 404, 409) },
      },
    },
    async (request, reply) => {
      await social.unlink(caller(request).token.sub, request.params.provider, clientMeta(request));
      return reply.status(204).send(null);
    },
  );
};
