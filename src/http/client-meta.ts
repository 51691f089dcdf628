import type { FastifyRequest } from 'fastify';

/** Who made a request, as far as the transport tells: recorded with sessions and in the audit trail. */
export interface ClientMeta {
  userAgent: string | null;
  ip: string | null;
}

/** The client's address (socket, or the forwarded chain when TRUST_PROXY allows) and user agent. */
export function clientMeta(request: FastifyRequest): ClientMeta {
  const ua = request.headers['user-agent'];
  return { ip: request.ip ?? null, userAgent: typeof ua === 'string' ? ua : null };
}
