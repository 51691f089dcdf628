/**
 * The environment reader: typed, bounded parsers for every kind of variable
 * (string, integer, boolean, enum, URL, duration, rate, PEM), collecting every
 * problem instead of stopping at the first. The concern files (server.ts,
 * tokens.ts, …) read their variables through it; index.ts throws one
 * ConfigError listing them all.
 */
import { readFileSync } from 'node:fs';

export type Env = Record<string, string | undefined>;

/** At most `max` requests per `windowSeconds`; null = that limit is off. */
export interface Rate {
  max: number;
  windowSeconds: number;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** The units of a duration (`duration`, and the window of a `rate`): none or `s`, `m`, `h`, `d`. */
const UNIT_SECONDS = { '': 1, s: 1, m: 60, h: 3600, d: 86400 } as const;
const unitSeconds = (unit: string | undefined) => UNIT_SECONDS[(unit ?? '').toLowerCase() as keyof typeof UNIT_SECONDS];

/** A comma-separated list, trimmed, without empty entries. */
export const list = (v: string | undefined) =>
  (v ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

/** Reads variables, collecting every problem instead of stopping at the first. */
export class Reader {
  readonly problems: string[] = [];
  constructor(private readonly env: Env) {}

  raw(name: string): string | undefined {
    const v = this.env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  }

  string(name: string, fallback: string): string {
    return this.raw(name) ?? fallback;
  }

  int(name: string, fallback: number, min: number, max: number): number {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) {
      this.problems.push(`${name}: expected an integer between ${min} and ${max}, got "${v}"`);
      return fallback;
    }
    return n;
  }

  bool(name: string, fallback: boolean): boolean {
    const v = this.raw(name)?.toLowerCase();
    if (v === undefined) return fallback;
    if (['1', 'true', 'yes', 'on'].includes(v)) return true;
    if (['0', 'false', 'no', 'off'].includes(v)) return false;
    this.problems.push(`${name}: expected true or false, got "${v}"`);
    return fallback;
  }

  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    if (!(allowed as readonly string[]).includes(v)) {
      this.problems.push(`${name}: expected one of ${allowed.join(', ')}, got "${v}"`);
      return fallback;
    }
    return v as T;
  }

  url(name: string, fallback: string | null, protocols: string[]): string | null {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    try {
      const u = new URL(v);
      if (!protocols.includes(u.protocol)) throw new Error('protocol');
      return v;
    } catch {
      this.problems.push(`${name}: expected a ${protocols.join(' or ')} URL, got "${redactUrl(v)}"`);
      return fallback;
    }
  }

  /** Seconds, given as a number of seconds or with a unit: `90`, `45s`, `30m`, `24h`, `7d`. */
  duration(name: string, fallback: number, min: number, max: number): number {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    const m = /^(\d+)\s*([smhd]?)$/i.exec(v);
    const n = m ? Number(m[1]) * unitSeconds(m[2]) : NaN;
    if (!(n >= min && n <= max)) {
      this.problems.push(`${name}: expected a duration between ${min}s and ${max}s such as 90, 30m or 24h, got "${v}"`);
      return fallback;
    }
    return n;
  }

  /** A rate `count/duration` (`10/1m`, `30/5m`, `5/h`: the duration units of `duration`), or `off`. */
  rate(name: string, fallback: string): Rate | null {
    const v = this.raw(name);
    const parsed = parseRate(v ?? fallback);
    if (parsed !== undefined) return parsed;
    this.problems.push(`${name}: expected count/duration such as 10/1m, 30/5m or 5/1h (at most 7d), or off, got "${v}"`);
    return parseRate(fallback) ?? null;
  }

  /** A PEM given inline (real newlines or `\n` escapes) or as `${name}_FILE`. */
  pem(name: string): string | null {
    const inline = this.raw(name);
    const file = this.raw(`${name}_FILE`);
    if (inline && file) {
      this.problems.push(`${name} and ${name}_FILE are both set; set only one`);
      return null;
    }
    if (file) {
      try {
        return readFileSync(file, 'utf8');
      } catch (err) {
        this.problems.push(`${name}_FILE: cannot read "${file}" (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
        return null;
      }
    }
    if (!inline) return null;
    const pem = inline.replace(/\\n/g, '\n');
    if (!pem.includes('-----BEGIN')) {
      this.problems.push(`${name}: expected a PEM block ("-----BEGIN ...")`);
      return null;
    }
    return pem;
  }
}

/** `count/duration` → Rate; `off` → null; anything else → undefined. */
function parseRate(v: string): Rate | null | undefined {
  if (['off', 'false', '0'].includes(v.toLowerCase())) return null;
  const m = /^(\d+)\s*\/\s*(\d*)\s*([smhd]?)$/i.exec(v);
  if (!m) return undefined;
  const max = Number(m[1]);
  const windowSeconds = Number(m[2] || '1') * unitSeconds(m[3]);
  return max >= 1 && max <= 1_000_000 && windowSeconds >= 1 && windowSeconds <= 7 * 86400 ? { max, windowSeconds } : undefined;
}

/** Hides a URL's credentials: everything between the scheme and the last `@` (a password may hold `@`, `/` or `:`). */
function redactUrl(v: string): string {
  const at = v.lastIndexOf('@');
  if (at === -1) return v;
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(v)?.[0] ?? '';
  return `${scheme}***${v.slice(at)}`;
}
