import type { FastifyRequest } from 'fastify';
import type { ClientMeta } from '../features/sessions/service.js';

/** The client's address (socket, or the forwarded chain when TRUST_PROXY allows) and user agent. */
export function clientMeta(request: FastifyRequest): ClientMeta {
  const ua = request.headers['user-agent'];
  return { ip: request.ip ?? null, userAgent: typeof ua === 'string' ? ua : null };
}
