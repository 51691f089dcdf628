/**
 * Tokens and their keys: the JWT algorithm, issuer, audience and lifetimes, and
 * where the signing keys come from (PRIVATE_KEY, or a KEYS_DIR managed by
 * `tessera keys …`; docs/key-rotation.md).
 */
import path from 'node:path';
import type { Reader } from './reader.js';

export type JwtAlgorithm = 'RS256' | 'ES256' | 'EdDSA';
export const JWT_ALGORITHMS: readonly JwtAlgorithm[] = ['RS256', 'ES256', 'EdDSA'];

export interface JwtConfig {
  algorithm: JwtAlgorithm;
  issuer: string;
  audience: string;
  accessTokenMinutes: number;
  refreshTokenDays: number;
  refreshReuseGraceSeconds: number;
  privateKeyPem: string | null;
  publicKeyPem: string | null;
  /** PREVIOUS_PUBLIC_KEYS: public PEMs of earlier keys, published next to PRIVATE_KEY (docs/key-rotation.md). */
  previousPublicKeysPem: string | null;
  /** KEYS_DIR: a directory of PEM private keys managed by `tessera keys …`; null = PRIVATE_KEY, or DATA_DIR/keys outside production. */
  keysDir: string | null;
  /** KEYS_ACTIVATION_DELAY: how long `tessera keys rotate` publishes a new key before it signs. */
  keysActivationDelaySeconds: number;
  /** KEYS_RELOAD_INTERVAL: how often a server re-reads its keys directory (0 = only on SIGHUP). */
  keysReloadIntervalSeconds: number;
}

/** `publicUrl` is the default issuer. */
export function jwtConfig(r: Reader, publicUrl: string): JwtConfig {
  return {
    algorithm: r.oneOf('JWT_ALGORITHM', JWT_ALGORITHMS, 'RS256'),
    issuer: r.string('JWT_ISSUER', publicUrl),
    audience: r.string('JWT_AUDIENCE', 'tessera'),
    accessTokenMinutes: r.int('ACCESS_TOKEN_EXPIRE_MINUTES', 15, 1, 24 * 60),
    refreshTokenDays: r.int('REFRESH_TOKEN_EXPIRE_DAYS', 30, 1, 3650),
    refreshReuseGraceSeconds: r.int('REFRESH_REUSE_GRACE_SECONDS', 10, 0, 300),
    privateKeyPem: r.pem('PRIVATE_KEY'),
    publicKeyPem: r.pem('PUBLIC_KEY'),
    previousPublicKeysPem: r.pem('PREVIOUS_PUBLIC_KEYS'),
    keysDir: r.raw('KEYS_DIR') ? path.resolve(r.string('KEYS_DIR', '')) : null,
    keysActivationDelaySeconds: r.duration('KEYS_ACTIVATION_DELAY', 600, 0, 30 * 86400),
    keysReloadIntervalSeconds: r.duration('KEYS_RELOAD_INTERVAL', 30, 0, 3600),
  };
}

/** The key sources exclude each other: checked once every variable is read. */
export function checkKeySources(r: Reader, jwt: JwtConfig): void {
  if (jwt.keysDir && jwt.privateKeyPem) r.problems.push('KEYS_DIR and PRIVATE_KEY are both set; set only one (docs/key-rotation.md)');
  if (jwt.keysDir && jwt.publicKeyPem) r.problems.push('PUBLIC_KEY: only checked against PRIVATE_KEY; with KEYS_DIR leave it unset');
  if (jwt.previousPublicKeysPem && !jwt.privateKeyPem) {
    r.problems.push('PREVIOUS_PUBLIC_KEYS: only used with PRIVATE_KEY; with KEYS_DIR (or DATA_DIR/keys) earlier keys stay in the directory');
  }
}
