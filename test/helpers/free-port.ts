import { createServer, type AddressInfo } from 'node:net';

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
