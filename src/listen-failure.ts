import { createServer } from 'node:net';
import { SetupError } from './fatal.js';

/** Why the listening socket could not be opened, in words a person can act on; null for anything else. */
export function listenFailure(err: unknown): string | null {
  switch ((err as NodeJS.ErrnoException).code) {
    case 'EADDRINUSE':
      return 'the port is in use by another process (EADDRINUSE): stop it, or set SERVER_PORT to a free port';
    case 'EACCES':
      return 'permission denied (EACCES): ports below 1024 need privileges; use SERVER_PORT=8000 behind a proxy';
    case 'EADDRNOTAVAIL':
      return 'this machine has no such address (EADDRNOTAVAIL): SERVER is 127.0.0.1 (this machine only) or 0.0.0.0 (every interface, e.g. in a container)';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'the SERVER host name does not resolve: use an address, e.g. 127.0.0.1 or 0.0.0.0';
    default:
      return null;
  }
}

/** The one line a start-up stops with (SetupError) when the socket cannot be opened. */
export const cannotListen = (at: { host: string; port: number }, why: string): string => `cannot listen on ${at.host}:${at.port} (SERVER, SERVER_PORT): ${why}`;

/**
 * The cluster primary's check before it forks: that the address and port can be listened on.
 * Without it, every worker would fail, print its own error and be restarted until WORKER_CRASH_LIMIT.
 */
export async function assertCanListen(at: { host: string; port: number }): Promise<void> {
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', (err) => {
      const why = listenFailure(err);
      reject(why ? new SetupError(cannotListen(at, why)) : err);
    });
    probe.listen({ host: at.host, port: at.port, exclusive: true }, () => probe.close(() => resolve()));
  });
}
