import { ConfigError } from './config.js';
import { DataDirLockedError } from './infra/db/data-dir-lock.js';
import { KeyError } from './infra/keys.js';

/**
 * Prints why an entry point (server or CLI) cannot go on: the message alone for
 * errors that explain themselves (configuration, keys, the embedded-database lock),
 * the whole error otherwise.
 */
export function reportFatal(err: unknown, action: string): void {
  if (err instanceof ConfigError || err instanceof KeyError || err instanceof DataDirLockedError) console.error(`tessera: ${err.message}`);
  else console.error(`tessera: ${action}`, err);
}
