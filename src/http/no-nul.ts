import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AppError } from '../errors.js';

/** Password fields reach only bcrypt (which takes every byte), never a text column. */
const EXEMPT = /password/;

/** The path of the first string under `value` that holds U+0000, or null. */
function nulAt(value: unknown, path: string, depth = 0): string | null {
  if (typeof value === 'string') return value.includes('\u0000') ? path : null;
  if (depth > 8 || value === null || typeof value !== 'object') return null;
  for (const [key, v] of Object.entries(value)) {
    if (EXEMPT.test(key)) continue;
    const found = nulAt(v, path ? `${path}.${key}` : key, depth + 1);
    if (found) return found;
  }
  return null;
}

/**
 * PostgreSQL text cannot hold U+0000: a NUL in any field that reaches a query
 * (an email looked up at sign-in, a name, a role, a search prefix, a provider id
 * in the path) failed the statement, a 500. Refused up front instead: 422
 * `validation_failed`, naming the field, for the body, the query and the path.
 */
export function registerNoNul(app: FastifyInstance): void {
  app.addHook('preValidation', async (request: FastifyRequest) => {
    const field = nulAt(request.params, '') ?? nulAt(request.query, '') ?? nulAt(request.body, '');
    if (field !== null)
      throw new AppError('validation_failed', 'Text cannot contain the NUL character (U+0000).', [{ field: field || 'body', message: 'contains U+0000' }]);
  });
}
