import type { JwtAlgorithm } from '../../src/config/index.js';
import { createKeyRing, generateKeyPairPem, toSigningKey, type KeyRing } from '../../src/infra/keys.js';

const cache = new Map<JwtAlgorithm, Promise<{ ring: KeyRing; privateKey: string; publicKey: string }>>();

/** One generated key pair per algorithm per test process (RSA generation is slow). */
export function testKeys(alg: JwtAlgorithm = 'RS256') {
  let entry = cache.get(alg);
  if (!entry) {
    entry = (async () => {
      const pair = generateKeyPairPem(alg);
      const key = await toSigningKey(pair.privateKey, alg, 'test key');
      return { ring: createKeyRing([key]), ...pair };
    })();
    cache.set(alg, entry);
  }
  return entry;
}
