import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { renderPage } from '../../src/http/page-layout.js';
import { PAGE_TEMPLATES, PageTemplateError, defaultPageTemplatesDir, loadPageTemplates } from '../../src/http/page-templates.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'tessera-ui-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const write = (name: string, source: string) => writeFileSync(path.join(dir, name), source);

/** The PageTemplateError that loading `dir` throws. */
function loadError(): PageTemplateError {
  try {
    loadPageTemplates(dir);
  } catch (err) {
    expect(err).toBeInstanceOf(PageTemplateError);
    return err as PageTemplateError;
  }
  throw new Error('did not throw');
}

describe('page templates', () => {
  it('ships a built-in file for every template, and nothing else', () => {
    expect(readdirSync(defaultPageTemplatesDir).sort()).toEqual(
      Object.keys(PAGE_TEMPLATES)
        .map((n) => `${n}.html`)
        .sort(),
    );
    const t = loadPageTemplates(null);
    expect(t.render('sign_in_intro', { app_name: 'Acme', client_name: 'Shop' })).toBe('<p>Use your Acme account.</p>');
  });

  it('an override replaces its one file; the others stay built in', () => {
    write('footer.html', '<footer><p>© {{app_name}} · <a href="/legal">Legal</a></p></footer>\n');
    const t = loadPageTemplates(dir);
    expect(t.render('footer', { app_name: 'Acme' })).toBe('<footer><p>© Acme · <a href="/legal">Legal</a></p></footer>');
    expect(t.render('signed_out', { app_name: 'Acme' })).toBe('<p>You are signed out of Acme. You can close this window.</p>');
  });

  it('escapes every value, in text and in attributes', () => {
    write('header.html', '<a href="/" title="{{app_name}}">{{ app_name }}</a>');
    const t = loadPageTemplates(dir);
    expect(t.render('header', { app_name: `"><img src=x onerror=alert(1)>&'`, logo_url: null, title: 'x' })).toBe(
      '<a href="/" title="&quot;&gt;&lt;img src=x onerror=alert(1)&gt;&amp;&#39;">&quot;&gt;&lt;img src=x onerror=alert(1)&gt;&amp;&#39;</a>',
    );
  });

  it('a section shows only with a value', () => {
    const t = loadPageTemplates(null);
    expect(t.render('header', { app_name: 'Acme', logo_url: null, title: 'x' })).toBe('');
    expect(t.render('header', { app_name: 'Acme', logo_url: 'https://cdn.example/logo.svg?a=1&b=2', title: 'x' })).toBe(
      '<img class="logo" src="https://cdn.example/logo.svg?a=1&amp;b=2" alt="Acme">',
    );
    expect(t.render('consent_intro', { app_name: 'Acme', client_name: 'Shop', email: null })).not.toContain('<strong></strong>');
  });

  it('renderPage puts the head, header and footer around the page', () => {
    write('head.html', '<link rel="stylesheet" href="/brand/fonts.css">');
    write('footer.html', '<footer>Made by {{app_name}}</footer>');
    const html = renderPage({ appName: 'Acme', templates: loadPageTemplates(dir) }, 'Hello', '<p>body</p>');
    expect(html).toMatch(/<link rel="stylesheet" href="\/brand\/fonts.css">\n<\/head>/);
    expect(html).toMatch(/<\/main>\n<footer>Made by Acme<\/footer>\n<\/body>/);
  });

  it.each([
    [
      'an unknown placeholder',
      'sign_in_intro.html',
      '<p>{{client}}</p>',
      /sign_in_intro\.html: unknown placeholder \{\{client\}\}; this template can use \{\{app_name\}\}, \{\{client_name\}\}/,
    ],
    ['a value the template may not use', 'footer.html', '{{client_name}}', /footer\.html: unknown placeholder \{\{client_name\}\}/],
    ['raw output (triple braces)', 'footer.html', '{{{app_name}}}', /footer\.html: malformed placeholder/],
    ['an expression', 'footer.html', '{{ app_name.toUpperCase() }}', /footer\.html: malformed placeholder/],
    ['an unclosed section', 'header.html', '{{#logo_url}}<img src="{{logo_url}}">', /header\.html: \{\{#logo_url\}\} is never closed/],
    ['a stray closing tag', 'header.html', '{{/logo_url}}', /header\.html: \{\{\/logo_url\}\} closes nothing/],
    ['a script', 'footer.html', '<script src="/x.js"></script>', /footer\.html: <script>/],
    ['inline style', 'footer.html', '<p style="color:red">x</p>', /footer\.html: a style="…" attribute/],
    ['a style element', 'head.html', '<style>p{}</style>', /head\.html: <style>/],
    ['an event handler', 'header.html', '<img src="/l.png" onerror="x()">', /header\.html: an on…= event handler/],
    ['a javascript: URL', 'footer.html', '<a href="javascript:alert(1)">x</a>', /footer\.html: a javascript: URL/],
    ['a meta refresh', 'head.html', '<meta http-equiv="refresh" content="0;url=https://evil.example">', /head\.html: <meta http-equiv>/],
    ['a form', 'footer.html', '<form action="https://evil.example"><input name="password"></form>', /footer\.html: an <iframe>/],
  ])('%s stops the start with an error naming the file', (_what, name, source, message) => {
    write(name, source);
    const err = loadError();
    expect(err.message).toMatch(message);
    expect(err.message).toContain(path.join(dir, name));
  });

  it('a templates folder that does not exist is a start error, not a silent fallback', () => {
    rmSync(dir, { recursive: true });
    expect(loadError().message).toBe(`UI_TEMPLATES_DIR: ${dir} is not a directory`);
  });
});
