import { createHash, createPrivateKey } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { JwtAlgorithm } from '../config/index.js';
import { systemClock } from './clock.js';
import {
  KeyError,
  algorithmOf,
  createKeyRing,
  createScheduledRing,
  createSwappableRing,
  generateKeyPairPem,
  isPrivateKeyPem,
  splitPemBlocks,
  toSigningKey,
  toVerificationKey,
  writeKeyPair,
  type KeyRing,
  type ScheduledKey,
  type VerificationKey,
} from './keys.js';

/**
 * Signing keys on disk (KEYS_DIR, or DATA_DIR/keys in development): one PEM
 * file per key. A name starting with a UTC time in ISO 8601 basic format
 * (`20260115T120000Z-<kid>.pem`, what `tessera keys rotate` writes) says when
 * the key starts signing; a file without one (the development `private.pem`)
 * signs from its modification time. The newest key of JWT_ALGORITHM whose time
 * has come signs (never a key of another algorithm); every key in the directory
 * is published. A public-key PEM is published too
 * (it verifies access tokens only); the public half of a private key in the
 * same directory (`public.pem`) is skipped. Other files, names starting with
 * `.` (Kubernetes' `..data`) and temporary files are ignored.
 */

export interface KeyFile {
  /** File names holding this key (a private key and, in development, its public.pem). */
  files: string[];
  key: VerificationKey;
  /** When it starts (or started) signing: from the name, else the file's modification time. */
  activatesAt: Date;
  /** When the file was written (its modification time). */
  createdAt: Date;
  publicOnly: boolean;
}

const STAMP = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z(?=[-_.])/;

/** `20260115T120000Z`: the time in key file names. */
export function fileStamp(d: Date): string {
  return d
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '');
}

function stampOf(name: string): Date | null {
  const m = STAMP.exec(name);
  if (!m) return null;
  const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
  return Number.isNaN(d.getTime()) ? null : d;
}

interface PemFile {
  name: string;
  full: string;
  mtime: Date;
  size: number;
}

/** The PEM files of the directory, with what identifies their content (to skip reloading an unchanged directory). */
function pemFiles(dir: string): PemFile[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new KeyError(code === 'ENOENT' ? `The keys directory ${dir} does not exist.` : `Cannot read the keys directory ${dir} (${code}).`);
  }
  const out: PemFile[] = [];
  for (const name of names.sort()) {
    if (name.startsWith('.') || !name.endsWith('.pem')) continue;
    const full = path.join(dir, name);
    try {
      const st = statSync(full); // follows symlinks (Kubernetes secret volumes)
      if (st.isFile()) out.push({ name, full, mtime: st.mtime, size: st.size });
    } catch {
      // removed while listing
    }
  }
  return out;
}

/** Reads every key of `dir`; throws one KeyError naming every file at fault. */
export function readKeyDir(dir: string): Promise<KeyFile[]> {
  return readKeyFiles(dir, pemFiles(dir));
}

async function readKeyFiles(dir: string, listed: PemFile[]): Promise<KeyFile[]> {
  const problems: string[] = [];
  const byKid = new Map<string, KeyFile>();
  const publics: { name: string; key: VerificationKey; activatesAt: Date; createdAt: Date }[] = [];
  for (const f of listed) {
    let pem: string;
    try {
      pem = readFileSync(f.full, 'utf8');
    } catch (err) {
      problems.push(`${f.full}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      continue;
    }
    const activatesAt = stampOf(f.name) ?? f.mtime;
    try {
      if (isPrivateKeyPem(pem)) {
        let alg: JwtAlgorithm | null = null;
        try {
          alg = algorithmOf(createPrivateKey(pem));
        } catch {
          throw new KeyError(`${f.full} is not a readable PEM private key.`);
        }
        if (!alg)
          throw new KeyError(`${f.full} is not a usable signing key: use RSA (at least 2048 bits), EC P-256 or Ed25519 (\`tessera keys rotate\` makes one).`);
        const key = await toSigningKey(pem, alg, f.full);
        const twin = byKid.get(key.kid);
        if (twin) {
          problems.push(`${f.full} and ${path.join(dir, twin.files[0] ?? '')} hold the same key (kid ${key.kid}); remove one`);
          continue;
        }
        byKid.set(key.kid, { files: [f.name], key, activatesAt, createdAt: f.mtime, publicOnly: false });
      } else {
        const [block, ...more] = splitPemBlocks(pem);
        if (block === undefined || more.length) throw new KeyError(`${f.full} is not one PEM key.`);
        publics.push({ name: f.name, key: await toVerificationKey(block, f.full), activatesAt, createdAt: f.mtime });
      }
    } catch (err) {
      if (!(err instanceof KeyError)) throw err;
      problems.push(err.message.replace(/\.$/, ''));
    }
  }
  for (const p of publics) {
    const twin = byKid.get(p.key.kid);
    if (twin && !twin.publicOnly)
      twin.files.push(p.name); // the public half of a key we have
    else if (twin)
      problems.push(`${path.join(dir, p.name)} and ${path.join(dir, twin.files[0] ?? '')} hold the same public key (kid ${p.key.kid}); remove one`);
    else byKid.set(p.key.kid, { files: [p.name], key: p.key, activatesAt: p.activatesAt, createdAt: p.createdAt, publicOnly: true });
  }
  if (problems.length) throw new KeyError(`Bad key files in ${dir}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  return [...byKid.values()].sort((a, b) => b.activatesAt.getTime() - a.activatesAt.getTime());
}

export function ringOf(files: KeyFile[], clock: { now(): Date }, algorithm: JwtAlgorithm): KeyRing {
  return createScheduledRing(
    files.map((f): ScheduledKey => ({ key: f.key, activatesAt: f.activatesAt })),
    clock,
    algorithm,
  );
}

export type KeyState = 'pending' | 'signing' | 'previous';

export interface KeyStatus extends KeyFile {
  state: KeyState;
  /** When a newer key took over (previous keys). */
  stoppedSigningAt: Date | null;
  /** When its last access token has expired (plus a minute for clock differences): `keys retire` needs no --force from then. */
  safeToRetireAt: Date | null;
  /** Until when refresh tokens it signed may still be in use (sessions that did not refresh since it stopped signing). */
  refreshTokensUntil: Date | null;
}

export interface Lifetimes {
  accessTokenSeconds: number;
  refreshTokenSeconds: number;
}

const SKEW_MS = 60_000;

/** The state of each key at `now`, newest first: a key of another algorithm than `algorithm` (JWT_ALGORITHM) is never signing or pending. */
export function keyStatuses(files: KeyFile[], now: Date, lifetimes: Lifetimes, algorithm: JwtAlgorithm): KeyStatus[] {
  const signing = files.some((f) => !f.publicOnly && f.key.alg === algorithm) ? ringOf(files, { now: () => now }, algorithm).current.kid : null;
  const privates = files.filter((f) => !f.publicOnly);
  return files.map((f) => {
    const state: KeyState = f.key.kid === signing ? 'signing' : !f.publicOnly && f.key.alg === algorithm && f.activatesAt > now ? 'pending' : 'previous';
    let stoppedSigningAt: Date | null = null;
    if (state === 'previous') {
      // The key that took over: the oldest private key activated after this one (and by now).
      const successors = privates.filter((p) => p.activatesAt > f.activatesAt && p.activatesAt <= now);
      const first = successors[successors.length - 1];
      stoppedSigningAt = first ? first.activatesAt : f.createdAt;
    }
    return {
      ...f,
      state,
      stoppedSigningAt,
      safeToRetireAt: stoppedSigningAt ? new Date(stoppedSigningAt.getTime() + lifetimes.accessTokenSeconds * 1000 + SKEW_MS) : null,
      refreshTokensUntil: stoppedSigningAt && !f.publicOnly ? new Date(stoppedSigningAt.getTime() + lifetimes.refreshTokenSeconds * 1000) : null,
    };
  });
}

/** Writes a private key atomically (a temporary file renamed into place), readable by the owner only. */
function writePrivateKey(dir: string, name: string, pem: string): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const final = path.join(dir, name);
  const tmp = path.join(dir, `.${name}.${process.pid}.tmp`);
  writeFileSync(tmp, pem, { mode: 0o600, flag: 'wx' });
  chmodSync(tmp, 0o600);
  renameSync(tmp, final);
  return final;
}

/** Creates a key in `dir` that starts signing at `activatesAt`. */
export async function createKeyFile(dir: string, alg: JwtAlgorithm, activatesAt: Date): Promise<{ kid: string; path: string }> {
  const pair = generateKeyPairPem(alg);
  const key = await toSigningKey(pair.privateKey, alg, 'the new key');
  return { kid: key.kid, path: writePrivateKey(dir, `${fileStamp(activatesAt)}-${key.kid}.pem`, pair.privateKey) };
}

/** Removes every file of a key. */
export function removeKeyFiles(dir: string, file: KeyFile): string[] {
  const removed: string[] = [];
  for (const name of file.files) {
    const full = path.join(dir, name);
    unlinkSync(full);
    removed.push(full);
  }
  return removed;
}

export interface KeySource {
  algorithm: JwtAlgorithm;
  privateKeyPem: string | null;
  publicKeyPem: string | null;
  /** PREVIOUS_PUBLIC_KEYS: concatenated public PEMs published next to PRIVATE_KEY. */
  previousPublicKeysPem?: string | null;
  /** KEYS_DIR. */
  keysDir?: string | null;
  /** Where a development key pair is generated once and reused; null = never generate. */
  devKeysDir: string | null;
  /** Decides which key of a directory signs (tests inject theirs). */
  clock?: { now(): Date };
}

export interface LoadedKeys {
  ring: KeyRing;
  /** Set for keys read from a directory: re-reads it (the caller keeps the old keys when it throws). */
  reload?: () => Promise<{ changed: boolean; ring: KeyRing }>;
  /** The directory the keys come from. */
  dir?: string;
  /** Set when a development key pair was generated by this call. */
  generatedAt?: string;
}

async function fromEnvironment(src: KeySource & { privateKeyPem: string }): Promise<KeyRing> {
  const current = await toSigningKey(src.privateKeyPem, src.algorithm, 'PRIVATE_KEY', src.publicKeyPem);
  const previous: VerificationKey[] = [];
  if (src.previousPublicKeysPem) {
    const blocks = splitPemBlocks(src.previousPublicKeysPem);
    if (!blocks.length) throw new KeyError('PREVIOUS_PUBLIC_KEYS holds no PEM block.');
    for (const [i, pem] of blocks.entries()) {
      const key = await toVerificationKey(pem, `PREVIOUS_PUBLIC_KEYS (key ${i + 1})`);
      // The current key listed again (a copy-paste during rotation) is the same key.
      if (key.kid !== current.kid && !previous.some((k) => k.kid === key.kid)) previous.push(key);
    }
  }
  return createKeyRing([current, ...previous]);
}

/** A fingerprint of the directory listing: reloading is skipped while it is unchanged. */
function fingerprint(listed: PemFile[]): string {
  const h = createHash('sha256');
  for (const f of listed) h.update(`${f.name}\0${f.mtime.getTime()}\0${f.size}\n`);
  return h.digest('base64url');
}

/**
 * The ring of the keys listed in `dir`; throws (a KeyError) when they cannot be read, none
 * is private, or none is of `algorithm`: Tessera never signs with another algorithm than JWT_ALGORITHM.
 */
async function ringOfListing(dir: string, listed: PemFile[], clock: { now(): Date }, algorithm: JwtAlgorithm, noPrivateKey: string): Promise<KeyRing> {
  const files = await readKeyFiles(dir, listed);
  const privates = files.filter((f) => !f.publicOnly);
  if (!privates.length) throw new KeyError(noPrivateKey);
  if (!privates.some((f) => f.key.alg === algorithm)) {
    const found = [...new Set(privates.map((f) => f.key.alg))].join(', ');
    throw new KeyError(
      `${dir} holds no ${algorithm} key, and JWT_ALGORITHM=${algorithm} (its keys are ${found}). ` +
        `Add one with \`JWT_ALGORITHM=${algorithm} tessera keys rotate\` (the ${found} keys stay published, so their tokens keep verifying), or set JWT_ALGORITHM=${privates[0]?.key.alg ?? found}.`,
    );
  }
  return ringOf(files, clock, algorithm);
}

async function fromDirectory(dir: string, clock: { now(): Date }, algorithm: JwtAlgorithm): Promise<LoadedKeys> {
  const first = pemFiles(dir);
  let listing = fingerprint(first);
  const ring = createSwappableRing(
    await ringOfListing(dir, first, clock, algorithm, `${dir} holds no private key (*.pem); create one with \`tessera keys rotate\`.`),
  );
  return {
    ring,
    dir,
    reload: async () => {
      const listed = pemFiles(dir);
      const seen = fingerprint(listed);
      if (seen === listing) return { changed: false, ring };
      ring.swap(await ringOfListing(dir, listed, clock, algorithm, `${dir} holds no private key any more.`));
      listing = seen;
      return { changed: true, ring };
    },
  };
}

/**
 * Loads the configured keys: PRIVATE_KEY (+ PREVIOUS_PUBLIC_KEYS), or the
 * directory KEYS_DIR, or in development DATA_DIR/keys, where a key pair is
 * generated once when it holds no private key, and a key for JWT_ALGORITHM
 * when it holds none of that algorithm (the older keys stay published). A
 * PRIVATE_KEY or KEYS_DIR without a key of JWT_ALGORITHM is a KeyError.
 */
export async function loadKeyRing(src: KeySource): Promise<LoadedKeys> {
  const clock = src.clock ?? systemClock;
  if (src.privateKeyPem) return { ring: await fromEnvironment({ ...src, privateKeyPem: src.privateKeyPem }) };
  if (src.keysDir) {
    // Outside production an empty (or missing) KEYS_DIR gets a first key, as DATA_DIR/keys does.
    if (src.devKeysDir && !hasPrivateKey(src.keysDir)) {
      const created = await createKeyFile(src.keysDir, src.algorithm, clock.now());
      return { ...(await fromDirectory(src.keysDir, clock, src.algorithm)), generatedAt: created.path };
    }
    return fromDirectory(src.keysDir, clock, src.algorithm);
  }
  if (!src.devKeysDir) throw new KeyError('PRIVATE_KEY (or KEYS_DIR) is not set.');
  const generatedAt = generateDevelopmentKey(src.devKeysDir, src.algorithm);
  const loaded = await fromDirectory(src.devKeysDir, clock, src.algorithm);
  return generatedAt ? { ...loaded, generatedAt } : loaded;
}

/**
 * DATA_DIR/keys: the first key pair (private.pem, public.pem), or after a change of
 * JWT_ALGORITHM a key of the new algorithm (private-<ALG>.pem, signing from now: it is
 * the newest). Returns the path of the key written, if one was.
 */
function generateDevelopmentKey(dir: string, algorithm: JwtAlgorithm): string | undefined {
  const present = privateKeyAlgorithms(dir);
  if (present.has(algorithm)) return undefined;
  const pair = generateKeyPairPem(algorithm);
  try {
    if (!present.size) return writeKeyPair(dir, pair).privatePath;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const file = path.join(dir, `private-${algorithm}.pem`);
    writeFileSync(file, pair.privateKey, { mode: 0o600, flag: 'wx' });
    return file;
  } catch (err) {
    // another process generated it first: use theirs
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return undefined;
  }
}

/** The algorithms of the private keys in `dir` (empty when it does not exist); unreadable files are left to the loader to report. */
function privateKeyAlgorithms(dir: string): Set<JwtAlgorithm> {
  const algs = new Set<JwtAlgorithm>();
  let files: PemFile[];
  try {
    files = pemFiles(dir);
  } catch {
    // no readable directory: no keys (the loader reports why)
    return algs;
  }
  for (const f of files) {
    try {
      const pem = readFileSync(f.full, 'utf8');
      const alg = isPrivateKeyPem(pem) ? algorithmOf(createPrivateKey(pem)) : null;
      if (alg) algs.add(alg);
    } catch {
      // reported by readKeyFiles
    }
  }
  return algs;
}

function hasPrivateKey(dir: string): boolean {
  if (!existsSync(dir)) return false;
  return pemFiles(dir).some((f) => {
    try {
      return isPrivateKeyPem(readFileSync(f.full, 'utf8'));
    } catch {
      // unreadable: the loader reports it
      return false;
    }
  });
}
