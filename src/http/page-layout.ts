/**
 * The one layout of every HTML page Tessera serves (the emailed links' pages and the OpenID
 * Provider's hosted pages): no inline script or style, so the hosted pages' strict CSP holds;
 * the look comes from /auth/ui/style.css (the built-in stylesheet, UI_PRIMARY_COLOR, and a
 * `ui.css` from UI_TEMPLATES_DIR added after it), the head's extras, the header (logo) and the
 * footer from the page templates (http/page-templates.ts, overridable from UI_TEMPLATES_DIR).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { escapeHtml } from '../infra/html.js';
import { builtInPageTemplates, type PageTemplates } from './page-templates.js';

export const STYLESHEET_PATH = '/auth/ui/style.css';

export interface PageTheme {
  appName: string;
  logoUrl?: string | null;
  /** The page templates loaded at start (UI_TEMPLATES_DIR); the built-in ones when absent. */
  templates?: PageTemplates;
}

/** The page templates of this theme. */
export const templatesOf = (theme: PageTheme): PageTemplates => theme.templates ?? builtInPageTemplates();

const BASE_STYLE = `
:root{--primary:#0969da}
body{margin:0;font:16px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:#f4f5f7;color:#1f2328}
main{max-width:28rem;margin:3rem auto;background:#fff;border-radius:8px;padding:2rem;box-shadow:0 1px 3px rgba(0,0,0,.1)}
@media (max-width:32rem){main{margin:0;border-radius:0;min-height:100vh;box-sizing:border-box;padding:1.25rem}}
.logo{display:block;max-height:48px;max-width:100%;margin:0 0 1rem}
h1{font-size:1.4rem;margin:0 0 1rem}
label{display:block;font-weight:600;margin:1rem 0 .25rem}
input[type=password],input[type=email],input[type=text]{box-sizing:border-box;width:100%;padding:.6rem;font-size:1rem;border:1px solid #8c959f;border-radius:6px}
input:focus,button:focus,a:focus{outline:3px solid var(--primary);outline-offset:2px}
button{margin-top:1.25rem;padding:.7rem 1.2rem;font-size:1rem;font-weight:600;color:#fff;background:var(--primary);border:0;border-radius:6px;cursor:pointer}
button.secondary,a.button{color:var(--primary);background:#fff;border:1px solid var(--primary)}
a.button{display:inline-block;margin-top:.75rem;padding:.7rem 1.2rem;border-radius:6px;font-weight:600;text-decoration:none}
.actions{display:flex;flex-wrap:wrap;gap:.75rem}
a{color:var(--primary)}
ul.scopes{padding-left:1.25rem}
.hint{color:#57606a;font-size:.9rem;margin:.25rem 0 0}
.error{color:#a40e26;font-weight:600}
.code{color:#57606a;font-size:.85rem}
`;

/** The stylesheet: the built-in one in the primary colour, then UI_TEMPLATES_DIR/ui.css when there is one. */
export function pageStylesheet(primaryColor: string, templatesDir: string | null): string {
  let extra = '';
  if (templatesDir) {
    try {
      extra = readFileSync(path.join(templatesDir, 'ui.css'), 'utf8');
    } catch (err) {
      // A templates folder without ui.css overrides nothing: the built-in look stays.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return `${BASE_STYLE.replace('--primary:#0969da', `--primary:${primaryColor}`)}${extra}`;
}

/** Serves the stylesheet (read once at start). */
export function registerPageStylesheet(app: FastifyInstance, css: string): void {
  app.get(STYLESHEET_PATH, { schema: { hide: true } }, async (_request, reply) =>
    reply.header('cache-control', 'public, max-age=300').type('text/css; charset=utf-8').send(css),
  );
}

export function renderPage(theme: PageTheme, title: string, body: string): string {
  const t = templatesOf(theme);
  const lines = (html: string) => (html ? `${html}\n` : '');
  const app = theme.appName;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<link rel="icon" href="/favicon.ico">
<link rel="stylesheet" href="${STYLESHEET_PATH}">
<title>${escapeHtml(title)} · ${escapeHtml(app)}</title>
${lines(t.render('head', { app_name: app, title }))}</head>
<body>
<main>
${lines(t.render('header', { app_name: app, logo_url: theme.logoUrl, title }))}<h1>${escapeHtml(title)}</h1>
${body}
</main>
${lines(t.render('footer', { app_name: app }))}</body>
</html>
`;
}
