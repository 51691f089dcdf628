import { ConfigError } from './config/index.js';
import { AppError } from './errors.js';
import { DataDirLockedError } from './infra/db/data-dir-lock.js';
import { TemplateError } from './features/mail/templates.js';
import { PageTemplateError } from './http/page-templates.js';
import { KeyError } from './infra/keys.js';

/** A start-up refusal whose message says what to do instead. */
export class SetupError extends Error {
  override name = 'SetupError';
}

/**
 * Prints why an entry point (server or CLI) cannot go on: the message alone for
 * errors that explain themselves (configuration, keys, the embedded-database lock,
 * templates, a worker that cannot run here),
 * the whole error otherwise.
 */
export function reportFatal(err: unknown, action: string): void {
  if (
    err instanceof ConfigError ||
    err instanceof KeyError ||
    err instanceof DataDirLockedError ||
    err instanceof TemplateError ||
    err instanceof PageTemplateError ||
    err instanceof SetupError ||
    err instanceof AppError
  )
    console.error(`tessera: ${err.message}`);
  else console.error(`tessera: ${action}`, err);
}
