/**
 * The page templates (docs/openid-provider.md "Templates"): the layout's head, header and footer, and
 * the hosted pages' text blocks, each a small HTML file in templates/ui/ that UI_TEMPLATES_DIR may
 * override file by file. The language is deliberately tiny: `{{name}}` inserts a value, always
 * HTML-escaped; `{{#name}}…{{/name}}` keeps its content only when the value is not empty. Nothing
 * else: no raw output, no expressions, no code. Every file is read and checked once, at start; a
 * broken one stops the start with a PageTemplateError naming the file.
 */
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { escapeHtml } from '../infra/html.js';

/** The built-in templates; UI_TEMPLATES_DIR may override any of their files. */
export const defaultPageTemplatesDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../templates/ui');

/** Every template and the values it may use (anything else is refused at start). */
export const PAGE_TEMPLATES = {
  head: ['app_name', 'title'],
  header: ['app_name', 'logo_url', 'title'],
  footer: ['app_name'],
  sign_in_intro: ['app_name', 'client_name'],
  sign_up_intro: ['app_name', 'client_name'],
  consent_intro: ['app_name', 'client_name', 'email'],
  consent_note: ['app_name', 'client_name'],
  error_help: ['app_name', 'code'],
  signed_out: ['app_name'],
} as const satisfies Record<string, readonly string[]>;

export type PageTemplateName = keyof typeof PAGE_TEMPLATES;
export type PageTemplateValues<N extends PageTemplateName> = Record<(typeof PAGE_TEMPLATES)[N][number], string | null | undefined>;

export class PageTemplateError extends Error {
  override name = 'PageTemplateError';
}

type Node = { text: string } | { value: string } | { section: string; children: Node[] };

/** A template file larger than this is a mistake (a page, not a block). */
const MAX_BYTES = 64 * 1024;

/** `{{name}}`, `{{#name}}`, `{{/name}}` (spaces allowed inside the braces). */
const TAG = /\{\{\s*([#/]?)\s*([A-Za-z0-9_]+)\s*\}\}/g;

/**
 * Markup the hosted pages' CSP would block or that could act on its own: refused at start with a
 * message, rather than shipped and silently broken (or a meta refresh that sends readers elsewhere).
 */
const FORBIDDEN: [RegExp, string][] = [
  [/<\s*script\b/i, '<script> (the pages run no script)'],
  [/<\s*style\b/i, '<style> (the CSP allows no inline style: put rules in ui.css)'],
  [/\sstyle\s*=/i, 'a style="…" attribute (the CSP allows no inline style: put rules in ui.css)'],
  [/\son[a-z]+\s*=/i, 'an on…= event handler attribute (the pages run no script)'],
  [/javascript\s*:/i, 'a javascript: URL'],
  [/<\s*(iframe|frame|frameset|object|embed|applet|base|form|input|button|textarea|select)\b/i, 'an <iframe>, <object>, <embed>, <base> or form element'],
  [/http-equiv/i, '<meta http-equiv> (it could redirect or change the policy)'],
];

function parse(source: string, file: string, allowed: readonly string[]): Node[] {
  const root: Node[] = [];
  const stack: { name: string; children: Node[] }[] = [];
  const current = () => stack.at(-1)?.children ?? root;
  let at = 0;
  const raw = /\{\{\{|\}\}\}/.exec(source);
  if (raw) throw new PageTemplateError(`${file}: malformed placeholder "${raw[0]}": there is no raw output, values are always escaped ({{name}})`);
  const text = (s: string) => {
    if (/\{\{|\}\}/.test(s)) {
      const bad = /\{\{[\s\S]{0,40}/.exec(s)?.[0] ?? '}}';
      throw new PageTemplateError(`${file}: malformed placeholder near "${bad.split('\n')[0]}": use {{name}}, {{#name}}…{{/name}}`);
    }
    if (s) current().push({ text: s });
  };
  for (const m of source.matchAll(TAG)) {
    text(source.slice(at, m.index));
    at = m.index + m[0].length;
    const [, kind, name = ''] = m;
    if (!allowed.includes(name))
      throw new PageTemplateError(`${file}: unknown placeholder {{${name}}}; this template can use ${allowed.map((v) => `{{${v}}}`).join(', ')}`);
    if (kind === '#') {
      const children: Node[] = [];
      current().push({ section: name, children });
      stack.push({ name, children });
    } else if (kind === '/') {
      const open = stack.pop();
      if (open?.name !== name) throw new PageTemplateError(`${file}: {{/${name}}} closes ${open ? `{{#${open.name}}}` : 'nothing'}`);
    } else current().push({ value: name });
  }
  text(source.slice(at));
  const open = stack.pop();
  if (open) throw new PageTemplateError(`${file}: {{#${open.name}}} is never closed with {{/${open.name}}}`);
  return root;
}

function render(nodes: Node[], values: Record<string, string | null | undefined>): string {
  let out = '';
  for (const n of nodes) {
    if ('text' in n) out += n.text;
    else if ('value' in n) out += escapeHtml(values[n.value] ?? '');
    else if (values[n.section]) out += render(n.children, values);
  }
  return out;
}

function readTemplate(name: string, dir: string | null): { source: string; file: string } {
  const candidates = dir ? [path.join(dir, name), path.join(defaultPageTemplatesDir, name)] : [path.join(defaultPageTemplatesDir, name)];
  for (const file of candidates) {
    try {
      if (statSync(file).size > MAX_BYTES) throw new PageTemplateError(`${file}: larger than ${MAX_BYTES / 1024} KiB`);
      return { source: readFileSync(file, 'utf8'), file };
    } catch (err) {
      if (err instanceof PageTemplateError) throw err;
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new PageTemplateError(`cannot read ${file}: ${(err as Error).message}`);
    }
  }
  throw new PageTemplateError(`missing page template ${name}`);
}

/** Loads and checks every page template (an override first, else the built-in file). */
export function loadPageTemplates(overrideDir: string | null) {
  if (overrideDir) {
    let isDir = false;
    try {
      isDir = statSync(overrideDir).isDirectory();
    } catch {
      isDir = false;
    }
    if (!isDir) throw new PageTemplateError(`UI_TEMPLATES_DIR: ${overrideDir} is not a directory`);
  }
  const compiled = new Map<PageTemplateName, Node[]>();
  for (const [name, allowed] of Object.entries(PAGE_TEMPLATES) as [PageTemplateName, readonly string[]][]) {
    const { source, file } = readTemplate(`${name}.html`, overrideDir);
    for (const [pattern, what] of FORBIDDEN) {
      if (pattern.test(source)) throw new PageTemplateError(`${file}: ${what} is not allowed in a page template`);
    }
    compiled.set(name, parse(source, file, allowed));
  }
  return {
    /** The template's HTML with these values (escaped). */
    render<N extends PageTemplateName>(name: N, values: PageTemplateValues<N>): string {
      return render(compiled.get(name) ?? [], values).trim();
    },
  };
}

export type PageTemplates = ReturnType<typeof loadPageTemplates>;

let builtIn: PageTemplates | null = null;

/** The built-in templates alone (loaded once), for pages rendered without a configured theme. */
export function builtInPageTemplates(): PageTemplates {
  builtIn ??= loadPageTemplates(null);
  return builtIn;
}
