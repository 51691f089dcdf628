import type { Socket } from 'node:net';
import { STATUS_CODES } from 'node:http';
import type { FastifyBaseLogger } from 'fastify';
import { errorCatalogue, type ErrorCode } from '../errors.js';

/** The catalogue code for an error Node's HTTP parser raised before any route ran. */
function codeFor(err: NodeJS.ErrnoException): ErrorCode {
  if (err.code === 'HPE_HEADER_OVERFLOW') return 'headers_too_large';
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return 'request_timeout';
  return 'bad_request';
}

/**
 * Fastify's `clientErrorHandler`: a request Node refused while parsing (headers
 * over MAX_HEADER_BYTES → 431, headers too slow → 408, malformed HTTP → 400) is
 * answered in the catalogue's JSON shape, then the connection is closed.
 */
export function clientErrorHandler(this: { log: FastifyBaseLogger }, err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const code = codeFor(err);
  const { status, message } = errorCatalogue[code];
  const body = JSON.stringify({ error: code, message });
  this.log.debug({ code: err.code }, 'client error');
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}
