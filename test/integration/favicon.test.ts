import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/test-app.js';

// /favicon.ico: the file in assets/, the right type, cached for a day and then revalidated by its
// ETag; the pages Tessera serves (emailed links, the request-a-new-link pages, /docs) name it.

const ICON = readFileSync(path.resolve(import.meta.dirname, '../../assets/favicon.ico'));

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp();
});
afterAll(async () => {
  await t?.close();
});

describe('GET /favicon.ico', () => {
  it('is the icon of assets/, image/x-icon, publicly cacheable for a day, with an ETag', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/favicon.ico' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('image/x-icon');
    expect(res.headers['cache-control']).toBe('public, max-age=86400');
    expect(res.headers.etag).toMatch(/^"[\w-]{22}"$/);
    expect(res.rawPayload.equals(ICON)).toBe(true);
    // An .ico whose image is a PNG (the first entry: 32×32).
    expect(res.rawPayload.subarray(0, 4)).toEqual(Buffer.from([0, 0, 1, 0]));
  });

  it('HEAD: the same headers, no body', async () => {
    const get = await t.app.inject({ method: 'GET', url: '/favicon.ico' });
    const head = await t.app.inject({ method: 'HEAD', url: '/favicon.ico' });
    expect(head.statusCode).toBe(200);
    expect(head.payload).toBe('');
    for (const h of ['content-type', 'cache-control', 'etag']) expect(head.headers[h], h).toBe(get.headers[h]);
  });

  it('revalidation: the ETag (strong, weak, in a list) answers 304 without a body; another ETag gets the icon', async () => {
    const { etag } = (await t.app.inject({ method: 'GET', url: '/favicon.ico' })).headers as { etag: string };
    for (const ifNoneMatch of [etag, `W/${etag}`, `"other", ${etag}`, '*']) {
      const res = await t.app.inject({ method: 'GET', url: '/favicon.ico', headers: { 'if-none-match': ifNoneMatch } });
      expect(res.statusCode, ifNoneMatch).toBe(304);
      expect(res.payload).toBe('');
      expect(res.headers.etag).toBe(etag);
      expect(res.headers['cache-control']).toBe('public, max-age=86400');
    }
    const stale = await t.app.inject({ method: 'GET', url: '/favicon.ico', headers: { 'if-none-match': '"an-older-icon"' } });
    expect(stale.statusCode).toBe(200);
    expect(stale.rawPayload.equals(ICON)).toBe(true);
  });

  it('other methods: 405 with Allow', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/favicon.ico' });
    expect(res.statusCode).toBe(405);
    expect(res.headers.allow).toBe('GET, HEAD');
  });
});

describe('the pages name it', () => {
  it.each(['/auth/confirm-email?token=nope', '/auth/password/reset?token=nope', '/auth/confirm-email/resend', '/auth/password/forgot'])('%s', async (url) => {
    const res = await t.app.inject({ method: 'GET', url });
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.payload).toContain('<link rel="icon" href="/favicon.ico">');
  });

  it('/docs names the same icon in its theme', async () => {
    const page = await t.app.inject({ method: 'GET', url: '/docs' });
    const href = /<link[^>]+rel="icon"[^>]*href="([^"]+)"/.exec(page.payload)?.[1] ?? /<link[^>]+href="([^"]+)"[^>]*rel="icon"/.exec(page.payload)?.[1];
    expect(href, page.payload.slice(0, 800)).toBeTruthy();
    const icon = await t.app.inject({ method: 'GET', url: new URL(href!, 'http://x/docs/').pathname });
    expect(icon.statusCode).toBe(200);
    expect(icon.rawPayload.equals(ICON)).toBe(true);
  });
});
