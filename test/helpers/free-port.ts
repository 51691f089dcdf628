import { createConnection, createServer, type AddressInfo } from 'node:net';

/** A loopback port that was free a moment ago (for servers whose URL must be known before they listen). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Opens (and closes) a TCP connection to a loopback port: null once it connected, the error code otherwise (ECONNREFUSED: nothing listens). */
export function connectError(port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const s = createConnection({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(null);
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}
