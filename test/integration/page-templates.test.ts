import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InjectBrowser, authorizeUrl, pkce } from '../helpers/inject-browser.js';
import { killServerProcesses, startServerProcess } from '../helpers/server-process.js';
import { createTestApp, type TestApp } from '../helpers/test-app.js';

// UI_TEMPLATES_DIR overrides the pages' layout (head, header, footer) and text blocks, file by
// file; values stay escaped and the CSP stays strict. A broken template stops the start.

const RP = 'https://rp.example/cb';
let t: TestApp;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'tessera-ui-'));
  writeFileSync(path.join(dir, 'head.html'), '<link rel="stylesheet" href="/brand/fonts.css">\n');
  writeFileSync(
    path.join(dir, 'header.html'),
    '<header class="brand"><a href="https://acme.example/">{{#logo_url}}<img src="{{logo_url}}" alt="">{{/logo_url}}{{app_name}}</a></header>\n',
  );
  writeFileSync(path.join(dir, 'footer.html'), '<footer class="brand-footer"><a href="https://acme.example/privacy">Privacy at {{app_name}}</a></footer>\n');
  writeFileSync(path.join(dir, 'sign_in_intro.html'), '<p class="intro">Welcome back! <em>{{client_name}}</em> uses your {{app_name}} ID.</p>\n');
  writeFileSync(path.join(dir, 'error_help.html'), '<p class="help">Need help? Write to help@acme.example and quote <code>{{code}}</code>.</p>\n');
  t = await createTestApp({ env: { APP_NAME: 'Acme ID', UI_TEMPLATES_DIR: dir, UI_LOGO_URL: 'https://cdn.acme.example/logo.svg' } });
});

afterAll(async () => {
  await t?.close();
  killServerProcesses();
  rmSync(dir, { recursive: true, force: true });
});

async function client(name: string) {
  const c = await t.app.services.clients.create(null, { name, type: 'public', firstParty: true, redirectUris: [RP], scopes: ['openid', 'email'] });
  return c.client.clientId;
}

function start(clientId: string, extra: Record<string, string> = {}) {
  return authorizeUrl({
    client_id: clientId,
    redirect_uri: RP,
    scope: 'openid email',
    state: 's',
    code_challenge: pkce().challenge,
    code_challenge_method: 'S256',
    ...extra,
  });
}

describe('a templates folder', () => {
  it('changes the layout and the text of the hosted sign-in page; the CSP stays strict', async () => {
    const id = await client('Acme Shop');
    const page = await new InjectBrowser(t.app).open(start(id));
    expect(page.res.statusCode).toBe(200);
    const html = page.res.body;
    expect(html).toContain('<link rel="stylesheet" href="/brand/fonts.css">\n</head>');
    expect(html).toContain(
      '<main>\n<header class="brand"><a href="https://acme.example/"><img src="https://cdn.acme.example/logo.svg" alt="">Acme ID</a></header>\n<h1>Sign in to Acme Shop</h1>',
    );
    expect(html).toContain('<p class="intro">Welcome back! <em>Acme Shop</em> uses your Acme ID ID.</p>');
    expect(html).not.toContain('Use your Acme ID account.');
    expect(html).toContain('</main>\n<footer class="brand-footer"><a href="https://acme.example/privacy">Privacy at Acme ID</a></footer>\n</body>');
    // The rest of the page is the built-in one: the form still works.
    expect(html).toContain('<form method="post" action="/auth/ui/sign-in">');
    const policy = String(page.res.headers['content-security-policy']);
    expect(policy).toContain("default-src 'none'");
    expect(policy).toContain("style-src 'self'");
    // The one script is the passkey button's own file (docs/openid-provider.md "Passkeys and email codes").
    expect(policy).not.toMatch(/unsafe-inline|unsafe-eval/);
    expect(policy).toMatch(/script-src 'self'(;|$)/);
  });

  it('changes the error page (layout and its help block)', async () => {
    const res = await t.app.inject({ method: 'GET', url: start('no-such-client') });
    expect(res.statusCode).toBe(400);
    expect(res.body).toMatch(/<p class="help">Need help\? Write to help@acme\.example and quote <code>[a-z_]+<\/code>\.<\/p>/);
    expect(res.body).toContain('<footer class="brand-footer">');
    expect(res.body).toContain('<header class="brand">');
  });

  it('changes the emailed-link pages too (same layout)', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/auth/password/forgot' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('<footer class="brand-footer"><a href="https://acme.example/privacy">Privacy at Acme ID</a></footer>');
  });

  it('keeps a client name and a login_hint that carry HTML escaped, in the template and in the page', async () => {
    const evil = `Shop"><img src=x onerror=alert(1)><script>alert(2)</script>`;
    const id = await client(evil);
    const hint = `"><script>alert(3)</script>@example.com`;
    const page = await new InjectBrowser(t.app).open(start(id, { login_hint: hint }));
    expect(page.res.statusCode).toBe(200);
    const html = page.res.body;
    // No script but the passkey button's own file.
    expect(html.match(/<script[^>]*>/g) ?? []).toEqual(['<script src="/auth/ui/passkey.js" defer>']);
    expect(html).not.toContain('<img src=x');
    expect(html).toContain('<em>Shop&quot;&gt;&lt;img src=x onerror=alert(1)&gt;&lt;script&gt;alert(2)&lt;/script&gt;</em>');
    expect(html).toContain('value="&quot;&gt;&lt;script&gt;alert(3)&lt;/script&gt;@example.com"');
  });
});

describe('a broken template', () => {
  it('stops the server at start with one clear error naming the file', async () => {
    const broken = mkdtempSync(path.join(tmpdir(), 'tessera-ui-broken-'));
    const data = mkdtempSync(path.join(tmpdir(), 'tessera-data-'));
    try {
      writeFileSync(path.join(broken, 'footer.html'), '<footer>{{#app_name}}{{app_name}}</footer>');
      const server = await startServerProcess({ databaseUrl: '', dataDir: data, env: { UI_TEMPLATES_DIR: broken }, readyTimeoutMs: 0 });
      const exit = await server.exited;
      expect(exit.code).toBe(1);
      const errors = server
        .output()
        .split('\n')
        .filter((l) => l.startsWith('tessera:'));
      expect(errors).toEqual([`tessera: ${path.join(broken, 'footer.html')}: {{#app_name}} is never closed with {{/app_name}}`]);
    } finally {
      rmSync(broken, { recursive: true, force: true });
      rmSync(data, { recursive: true, force: true });
    }
  }, 60_000);
});
