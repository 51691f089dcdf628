import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../../packages/client/src/index.js';
import { freePort } from '../helpers/free-port.js';
import { SmtpCatcher } from '../helpers/smtp.js';
import { createTestApp, uniqueEmail, type TestApp } from '../helpers/test-app.js';

// The SDK's passwordless calls against a live Tessera: an emailed code (read from a real SMTP
// server), and the passkey calls up to the browser's part (the ceremonies are in
// test/integration/passkeys-browser.test.ts).

let t: TestApp;
let smtp: SmtpCatcher;
let baseUrl: string;

beforeAll(async () => {
  smtp = await SmtpCatcher.start();
  const port = await freePort();
  baseUrl = `http://localhost:${port}`;
  t = await createTestApp({
    env: { PUBLIC_URL: baseUrl, EMAIL_SIGN_IN_ENABLED: 'true', SMTP_SERVER: '127.0.0.1', SMTP_PORT: String(smtp.port), OUTBOX_POLL_INTERVAL_MS: '50' },
  });
  await t.app.listen({ host: '127.0.0.1', port });
  // Passkeys are bound to PUBLIC_URL's host (localhost); the SDK calls the socket by address.
  baseUrl = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  await t?.close();
  await smtp?.close();
});

const client = () => createClient({ baseUrl, now: () => t.clock.now().getTime() });

describe('@tessera/client passwordless calls', () => {
  it('requestEmailCode + signInWithEmailCode sign in (amr mca); a wrong code is a TesseraError invalid_grant', async () => {
    const email = uniqueEmail('sdk');
    const c = client();
    await c.requestEmailCode(email);
    const mail = await smtp.waitFor(email, /sign-in code/, 10_000);
    const code = /(\d{6})/.exec(mail.subject)![1]!;
    await expect(c.signInWithEmailCode({ email, code: code === '000000' ? '000001' : '000000' })).rejects.toMatchObject({ code: 'invalid_grant' });
    const result = await c.signInWithEmailCode({ email, code });
    expect(result.status).toBe('signed_in');
    if (result.status !== 'signed_in') throw new Error('unreachable');
    expect(result.session.amr).toEqual(['mca']);
    expect((await c.getUser()).email).toBe(email);

    // The passkey calls up to the ceremony: options to create one, none yet, sign-in options.
    const creation = await c.passkeys.registrationOptions();
    expect((creation.rp as { id: string }).id).toBe('localhost');
    expect(await c.passkeys.list()).toEqual([]);
    const signIn = await c.passkeys.signInOptions({ email });
    expect(signIn.flowId).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect((signIn.options.allowCredentials as unknown[]).length).toBe(1);
    await expect(c.passkeys.remove('00000000-0000-4000-8000-000000000000')).rejects.toMatchObject({ code: 'passkey_not_found' });
  });
});
