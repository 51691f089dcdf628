import type { FastifyInstance } from 'fastify';

interface RoutePattern {
  regex: RegExp;
  methods: Set<string>;
}

const patterns = new WeakMap<FastifyInstance, Map<string, RoutePattern>>();
const order = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

/** `/users/:id/sessions` → a RegExp matching the paths the router sends to that route. */
function toRegex(url: string): RegExp {
  const source = url
    .split(/(:[A-Za-z0-9_]+|\*)/)
    .map((part) => (part === '*' ? '.*' : part.startsWith(':') ? '[^/]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${source}$`);
}

/**
 * Records the methods of every route registered from now on (call it before the
 * routes), so that a request with another method can be told which ones exist.
 * Catch-all routes (`*`, e.g. the CORS preflight) are left out: they would make every path known.
 */
export function registerRouteMethods(app: FastifyInstance): void {
  const known = new Map<string, RoutePattern>();
  patterns.set(app, known);
  app.addHook('onRoute', (route) => {
    if (route.url === '*' || route.url === '/*') return;
    const entry = known.get(route.url) ?? { regex: toRegex(route.url), methods: new Set<string>() };
    for (const m of [route.method].flat()) entry.methods.add(m.toUpperCase());
    known.set(route.url, entry);
  });
}

/** The methods the routes of `path` accept (the `Allow` header), empty for a path no route has. */
export function allowedMethods(app: FastifyInstance, path: string): string[] {
  const methods = new Set<string>();
  for (const { regex, methods: m } of patterns.get(app)?.values() ?? []) if (regex.test(path)) m.forEach((x) => methods.add(x));
  return [...methods].sort((a, b) => (order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99));
}
