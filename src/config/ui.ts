/** The hosted pages' theme (docs/openid-provider.md "Hosted pages"): the product name is APP_NAME. */
import path from 'node:path';
import type { Reader } from './reader.js';

export interface UiConfig {
  /** UI_LOGO_URL: an https (or same-site path) image shown above every hosted page; null = the name only. */
  logoUrl: string | null;
  /** UI_PRIMARY_COLOR: the colour of buttons, links and focus rings (#rgb or #rrggbb). */
  primaryColor: string;
  /** UI_TEMPLATES_DIR: a directory whose `ui.css` is added after the built-in stylesheet. */
  templatesDir: string | null;
}

export function uiConfig(r: Reader): UiConfig {
  const color = r.string('UI_PRIMARY_COLOR', '#0969da');
  if (!/^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$/.test(color)) r.problems.push(`UI_PRIMARY_COLOR: expected a colour like #0969da, got "${color}"`);
  const logo = r.raw('UI_LOGO_URL') ?? null;
  if (logo !== null && !/^(https:\/\/[^\s"'<>]+|\/[^\s"'<>/][^\s"'<>]*)$/.test(logo))
    r.problems.push('UI_LOGO_URL: expected an https:// URL or a path on this server (/logo.svg)');
  return {
    logoUrl: logo,
    primaryColor: color,
    templatesDir: r.raw('UI_TEMPLATES_DIR') ? path.resolve(r.string('UI_TEMPLATES_DIR', '')) : null,
  };
}
