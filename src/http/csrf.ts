/**
 * CSRF protection of the hosted pages' forms: a random per-browser value in an HttpOnly cookie,
 * repeated in a hidden field of every form and compared in constant time; and a cross-site
 * request (Sec-Fetch-Site: cross-site / same-site, or an Origin that is not the service's) is
 * refused whatever it carries.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { cookieName, readCookie, setCookie } from './cookies.js';

const VALUE = /^[A-Za-z0-9_-]{43}$/;

export interface Csrf {
  /** The browser's value, set now when it has none (a page that shows a form, or /auth/authorize). */
  ensure(request: FastifyRequest, reply: FastifyReply): string;
  /** The browser's value if it has a well-formed one. */
  current(request: FastifyRequest): string | null;
  /** Whether a form POST is this browser's own, from this service's pages. */
  valid(request: FastifyRequest, field: unknown): boolean;
}

export function createCsrf(publicUrl: string): Csrf {
  const https = publicUrl.startsWith('https:');
  const name = cookieName('tessera_csrf', https);
  const origin = new URL(publicUrl).origin;
  const current = (request: FastifyRequest) => {
    const v = readCookie(request, name);
    return v && VALUE.test(v) ? v : null;
  };
  return {
    current,
    ensure(request, reply) {
      const existing = current(request);
      if (existing) return existing;
      const value = randomBytes(32).toString('base64url');
      setCookie(reply, name, value, { secure: https });
      return value;
    },
    valid(request, field) {
      const site = request.headers['sec-fetch-site'];
      if (site !== undefined && site !== 'same-origin') return false;
      const from = request.headers.origin;
      if (from !== undefined && from !== origin) return false;
      const cookie = current(request);
      if (!cookie || typeof field !== 'string' || field.length !== cookie.length) return false;
      return timingSafeEqual(Buffer.from(field), Buffer.from(cookie));
    },
  };
}
