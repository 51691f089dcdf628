import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/test-app.js';

// GET and HEAD are safe methods (RFC 9110 §9.2.1): link scanners, previews and prefetchers send
// them on their own. Every GET/HEAD route the app registers is listed here after a review that
// it changes nothing; a new one fails this test until it is reviewed and added.

/** Reviewed: these only read (or render a page whose button POSTs). */
const READ_ONLY = [
  '/', // a redirect to /docs
  '/.well-known/jwks.json',
  '/.well-known/oauth-authorization-server',
  '/.well-known/openid-configuration',
  '/admin/clients',
  '/admin/clients/:client_id',
  '/admin/roles',
  '/admin/users',
  '/admin/users/:id',
  '/auth/ui/style.css', // the pages' stylesheet
  '/auth/ui/sign-in', // the hosted pages (docs/openid-provider.md): each shows a form that POSTs; GET/HEAD only read the pending request
  '/auth/ui/sign-up',
  '/auth/ui/mfa',
  '/auth/ui/consent',
  '/auth/ui/select-account',
  '/auth/ui/passkey.js', // the sign-in page's script (a static file)
  '/auth/ui/email-link', // the emailed link of a code asked for on the sign-in page: a page whose button POSTs, or a redirect to /auth/email-code/link
  '/auth/end-session', // a confirmation page; only its POST (with the CSRF value) signs out
  '/auth/confirm-email', // a page with a button that POSTs the token; GET/HEAD never confirm
  '/auth/email-code/link', // the emailed sign-in link's page: a button that POSTs the token; GET/HEAD never sign in
  '/auth/confirm-email/resend', // a page with an address field whose form POSTs; GET/HEAD send nothing
  '/auth/password/forgot', // a page with an address field whose form POSTs; GET/HEAD send nothing
  '/auth/password/reset', // the reset form; the token is only looked at
  '/auth/providers',
  '/auth/userinfo', // OpenID userinfo: reads the claims of the Bearer token
  '/docs',
  '/docs/',
  '/docs/*',
  '/docs/json',
  '/docs/static/index.html',
  '/docs/static/swagger-initializer.js',
  '/docs/static/theme/favicon.ico', // static files of the docs' theme
  '/docs/static/theme/tessera.css',
  '/docs/yaml',
  '/favicon.ico', // a static file
  '/health/live',
  '/health/ready',
  '/metrics',
  '/users/me',
  '/users/me/audit',
  '/users/me/consents',
  '/users/me/identities',
  '/users/me/mfa',
  '/users/me/passkeys',
  '/users/me/sessions',
];

/**
 * Inherent to OAuth, and GET only (no HEAD): the start of a web sign-in stores its state row, and
 * the provider's redirect back uses that one-time state up. Neither touches an account until the
 * provider has answered for the user. The OpenID Provider's authorization endpoint stores the pending
 * request (and, for a browser already signed in, answers with a code: that is the protocol).
 */
const OAUTH_GET_ONLY = [
  '/auth/oauth/:provider/authorize',
  '/auth/oauth/:provider/callback',
  '/auth/authorize',
  // The hosted sign-in page's provider buttons: the same web flow's start, and its way back.
  '/auth/ui/social/:provider',
  '/auth/ui/social-return',
];

/** Every route of `printRoutes({ commonPrefix: false })`, as a full path with its methods. */
function routesOf(tree: string): Map<string, string[]> {
  const routes = new Map<string, string[]>();
  const stack: string[] = [];
  for (const line of tree.split('\n')) {
    const m = /^((?:[│ ] {3})*)[├└]── (.*?)(?: \(([^)]+)\))?$/.exec(line);
    if (!m) continue;
    const depth = (m[1] ?? '').length / 4;
    stack.length = depth;
    stack.push(m[2] ?? '');
    if (m[3]) routes.set(stack.join(''), m[3].split(', '));
  }
  return routes;
}

let t: TestApp;
beforeAll(async () => {
  // Every optional route registered (the hosted pages' email-code routes need EMAIL_SIGN_IN_ENABLED).
  t = await createTestApp({ env: { EMAIL_SIGN_IN_ENABLED: 'true' } });
});
afterAll(async () => {
  await t?.close();
});

describe('safe methods change nothing', () => {
  it('every GET/HEAD route is a reviewed read-only route, or one of the two OAuth redirects (GET only)', () => {
    const routes = routesOf(t.app.printRoutes({ commonPrefix: false }));
    const safe = [...routes].filter(([, methods]) => methods.includes('GET') || methods.includes('HEAD'));
    expect(safe.length).toBeGreaterThan(20);
    expect(safe.map(([path]) => path).sort()).toEqual([...READ_ONLY, ...OAUTH_GET_ONLY].sort());
    for (const path of OAUTH_GET_ONLY) expect(routes.get(path)?.includes('HEAD'), path).toBe(false);
  });
});
