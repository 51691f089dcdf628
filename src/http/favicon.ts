import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';

/** Same relative path from src/http and dist/http. */
export const FAVICON = readFileSync(new URL('../../assets/favicon.ico', import.meta.url));

/** GET (and HEAD) /favicon.ico: a static file, cacheable for a day; the pages and /docs name it. */
export function registerFavicon(app: FastifyInstance): void {
  app.get('/favicon.ico', { schema: { hide: true } }, async (_request, reply) =>
    reply.header('cache-control', 'public, max-age=86400').type('image/x-icon').send(FAVICON),
  );
}
