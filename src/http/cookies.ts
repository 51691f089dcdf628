/**
 * The Cookie header read and Set-Cookie written by hand (no cookie library is installed):
 * only what Tessera's own cookies need — names and values of base64url characters.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';

/** The value of the first cookie named `name`, or null. */
export function readCookie(request: FastifyRequest, name: string): string | null {
  const header = request.headers.cookie;
  if (!header) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim() || null;
  }
  return null;
}

export interface CookieOptions {
  /** Seconds; absent = until the browser closes; 0 = delete it. */
  maxAge?: number;
  secure: boolean;
  path?: string;
}

/** Adds one Set-Cookie (HttpOnly, SameSite=Lax) to the reply, keeping those already set. */
export function setCookie(reply: FastifyReply, name: string, value: string, opts: CookieOptions): void {
  if (!/^[A-Za-z0-9_-]*$/.test(value)) throw new Error(`cookie ${name}: refusing a value outside base64url`);
  const parts = [`${name}=${value}`, `Path=${opts.path ?? '/'}`, 'HttpOnly', 'SameSite=Lax'];
  if (opts.maxAge !== undefined) parts.push(`Max-Age=${opts.maxAge}`);
  if (opts.secure) parts.push('Secure');
  const previous = reply.getHeader('set-cookie');
  const list = previous === undefined ? [] : Array.isArray(previous) ? previous.map(String) : [String(previous)];
  reply.header('set-cookie', [...list, parts.join('; ')]);
}

/**
 * A cookie name for the service's scheme: `__Host-` prefixed over https (the browser then
 * requires Secure, Path=/ and no Domain), the bare name over http (localhost development, tests),
 * where a Secure cookie would not be kept.
 */
export const cookieName = (name: string, https: boolean) => (https ? `__Host-${name}` : name);
