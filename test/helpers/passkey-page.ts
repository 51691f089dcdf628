import type { BrowserContext, CDPSession, Page } from 'playwright-core';

/**
 * The test page of the passkey ceremonies: served by Playwright on Tessera's own origin (so its
 * fetch() calls are same-origin), it runs navigator.credentials with the options Tessera returns
 * (through the browser's own JSON helpers) and returns the JSON credentials it made.
 */
export const PASSKEY_TEST_PATH = '/__passkey-test';

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>passkey test</title></head>
<body><h1>passkey test</h1>
<script>
  async function call(method, path, body, token) {
    const headers = { 'content-type': 'application/json' };
    if (token) headers.authorization = 'Bearer ' + token;
    const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  }
  async function create(options) {
    const cred = await navigator.credentials.create({ publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options) });
    return cred.toJSON();
  }
  async function get(options) {
    const cred = await navigator.credentials.get({ publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options) });
    return cred.toJSON();
  }
  /** Adds a passkey to the signed-in account: options, create(), POST. */
  window.register = async (token, name) => {
    const options = await call('POST', '/users/me/passkeys/options', {}, token);
    if (options.status !== 200) return options;
    try {
      return await call('POST', '/users/me/passkeys', { credential: await create(options.body), name }, token);
    } catch (e) {
      return { status: 0, body: { browser_error: e.name + ': ' + e.message } };
    }
  };
  /** Signs in: options (with an optional email hint), get(), verify; also returns the assertion it sent. */
  window.signIn = async (email) => {
    const options = await call('POST', '/auth/passkey/options', email ? { email } : {});
    let credential;
    try {
      credential = await get(options.body.options);
    } catch (e) {
      return { status: 0, body: { browser_error: e.name + ': ' + e.message } };
    }
    const verified = await call('POST', '/auth/passkey/verify', { flow_id: options.body.flow_id, credential });
    return { ...verified, flowId: options.body.flow_id, credential };
  };
  /** Only the ceremony, on options given by the test (another server's, or changed): the assertion JSON, or the browser's error. */
  window.assert = async (options) => {
    try {
      return { credential: await get(options) };
    } catch (e) {
      return { error: e.name + ': ' + e.message };
    }
  };
  /** Only the creation, on options given by the test: the credential JSON, or the browser's error. */
  window.createOnly = async (options) => {
    try {
      return { credential: await create(options) };
    } catch (e) {
      return { error: e.name + ': ' + e.message };
    }
  };
  window.call = call;
</script>
</body></html>`;

export interface AuthenticatorOptions {
  hasUserVerification?: boolean;
  isUserVerified?: boolean;
  /** A synced passkey (backup eligible): amr swk instead of hwk. */
  backupEligible?: boolean;
}

export interface PasskeyTab {
  page: Page;
  cdp: CDPSession;
  authenticatorId: string;
}

/** A tab on `origin`'s test page with its own CDP virtual authenticator (internal transport, resident keys). */
export async function passkeyTab(context: BrowserContext, origin: string, opts: AuthenticatorOptions = {}): Promise<PasskeyTab> {
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  await page.route(`${origin}${PASSKEY_TEST_PATH}`, (route) => route.fulfill({ contentType: 'text/html', body: PAGE }));
  await page.goto(`${origin}${PASSKEY_TEST_PATH}`);
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: opts.hasUserVerification ?? true,
      isUserVerified: opts.isUserVerified ?? true,
      automaticPresenceSimulation: true,
      ...(opts.backupEligible ? { defaultBackupEligibility: true, defaultBackupState: true } : {}),
    },
  });
  return { page, cdp, authenticatorId };
}

export interface PageResult {
  status: number;
  body: Record<string, unknown>;
  flowId?: string;
  credential?: Record<string, unknown>;
}

export const registerIn = (tab: PasskeyTab, token: string, name: string) =>
  tab.page.evaluate(([t, n]) => (globalThis as unknown as { register: (t: string, n: string) => Promise<PageResult> }).register(t, n), [token, name] as const);

export const signInIn = (tab: PasskeyTab, email?: string) =>
  tab.page.evaluate((e) => (globalThis as unknown as { signIn: (e?: string) => Promise<PageResult> }).signIn(e ?? undefined), email ?? null);

export const assertIn = (tab: PasskeyTab, options: unknown) =>
  tab.page.evaluate(
    (o) => (globalThis as unknown as { assert: (o: unknown) => Promise<{ credential?: Record<string, unknown>; error?: string }> }).assert(o),
    options,
  );

export const createIn = (tab: PasskeyTab, options: unknown) =>
  tab.page.evaluate(
    (o) => (globalThis as unknown as { createOnly: (o: unknown) => Promise<{ credential?: Record<string, unknown>; error?: string }> }).createOnly(o),
    options,
  );
