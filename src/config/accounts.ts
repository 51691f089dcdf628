/** Accounts: password hashing (bcrypt and its thread pool) and multi-factor authentication. */
import { availableParallelism } from 'node:os';
import type { Reader } from './reader.js';

export interface PasswordsConfig {
  bcryptRounds: number;
  bcryptConcurrency: number;
  /** BCRYPT_MAX_QUEUE: hashes allowed to wait for a thread; beyond it a request gets 503 service_unavailable with Retry-After. */
  bcryptMaxQueue: number;
  /** BCRYPT_MAX_WAIT_MS: a hash whose estimated wait for a thread is longer is refused at once (503 with Retry-After). */
  bcryptMaxWaitMs: number;
  /** BCRYPT_NICE: the nice value of the hashing threads (0 = the priority of the rest; up to 19 = yield to everything). */
  bcryptNice: number;
  /**
   * EVENT_LOOP_NICE: the nice value of each server process's request thread, set once its hashing
   * threads have started (Linux: per thread). Above BCRYPT_NICE, sign-ins keep a reserved share of
   * the CPU when session checks saturate it (docs/operations.md "Hashing under overload").
   */
  eventLoopNice: number;
}

export interface MfaConfig {
  /** MFA_ENCRYPTION_KEY (32 bytes); null = generated once into DATA_DIR/keys outside production. */
  encryptionKey: Buffer | null;
  /** How recent a sign-in must be to enrol without the password again. */
  reauthSeconds: number;
  /** Wrong codes allowed per user per window before 429. */
  maxFailures: number;
  failureWindowSeconds: number;
  /** Lifetime of the mfa_token of a sign-in waiting for its code. */
  challengeSeconds: number;
}

/** `workers`: the processes of this machine (WORKERS), which share its cores. */
export function passwordsConfig(r: Reader, workers: number): PasswordsConfig {
  return {
    bcryptRounds: r.int('BCRYPT_ROUNDS', 12, 4, 15),
    // Hashing threads per process: together, the processes of one machine use every core once.
    bcryptConcurrency: r.int('BCRYPT_CONCURRENCY', Math.max(1, Math.ceil(availableParallelism() / workers)), 1, 256),
    bcryptMaxQueue: r.int('BCRYPT_MAX_QUEUE', 1000, 1, 1_000_000),
    bcryptMaxWaitMs: r.int('BCRYPT_MAX_WAIT_MS', 5000, 100, 600_000),
    bcryptNice: r.int('BCRYPT_NICE', 0, 0, 19),
    eventLoopNice: r.int('EVENT_LOOP_NICE', 3, 0, 19),
  };
}

export function mfaConfig(r: Reader): MfaConfig {
  return {
    encryptionKey: mfaKey(r),
    reauthSeconds: r.duration('MFA_REAUTH_WINDOW', 300, 0, 86400),
    maxFailures: r.int('MFA_MAX_FAILURES', 5, 1, 100),
    failureWindowSeconds: r.duration('MFA_FAILURE_WINDOW', 900, 60, 86400),
    challengeSeconds: r.duration('MFA_TOKEN_TTL', 300, 30, 3600),
  };
}

/** 32 bytes, as base64 (44 characters) or hex (64). */
function mfaKey(r: Reader): Buffer | null {
  const v = r.raw('MFA_ENCRYPTION_KEY');
  if (v === undefined) return null;
  const key = /^[0-9a-f]{64}$/i.test(v) ? Buffer.from(v, 'hex') : Buffer.from(v, 'base64');
  if (key.length !== 32) {
    r.problems.push('MFA_ENCRYPTION_KEY: expected 32 bytes as base64 or hex; generate one with `openssl rand -base64 32`');
    return null;
  }
  return key;
}
