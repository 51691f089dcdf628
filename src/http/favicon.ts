import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';

/** Same relative path from src/http and dist/http. */
export const FAVICON = readFileSync(new URL('../../assets/favicon.ico', import.meta.url));

/** Changes with the file only: after the day of caching, a browser revalidates and gets a 304. */
const ETAG = `"${createHash('sha256').update(FAVICON).digest('base64url').slice(0, 22)}"`;

/** GET (and HEAD) /favicon.ico: a static file, cacheable for a day, then revalidated by its ETag; the pages and /docs name it. */
export function registerFavicon(app: FastifyInstance): void {
  app.get('/favicon.ico', { schema: { hide: true } }, async (request, reply) => {
    reply.header('cache-control', 'public, max-age=86400').header('etag', ETAG);
    const match = request.headers['if-none-match'];
    if (match !== undefined && (match.trim() === '*' || match.split(',').some((tag) => tag.trim().replace(/^W\//, '') === ETAG)))
      return reply.status(304).send();
    return reply.type('image/x-icon').send(FAVICON);
  });
}
