import type { FastifyServerOptions } from 'fastify';
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import type { Config } from '../config/index.js';

/** Paths that must never reach a log line. */
export const redactPaths = [
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  '*.password',
  '*.current_password',
  '*.new_password',
  '*.refresh_token',
  '*.access_token',
  '*.token',
  '*.mfa_token',
];

/**
 * pino JSON, redacted. With DEBUG=true in a terminal, pretty-printed instead
 * (pino-pretty); never when the output is a file or a pipe, where JSON is wanted.
 */
export function loggerOptions(config: Config, stream?: DestinationStream): FastifyServerOptions['logger'] {
  const base = { level: config.logLevel, redact: { paths: redactPaths, censor: '[redacted]' } };
  if (stream) return { ...base, stream };
  if (config.debug && process.stdout.isTTY)
    return { ...base, transport: { target: 'pino-pretty', options: { translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' } } };
  return base;
}

/**
 * The process's logger (pino, options as above). The server hands it to Fastify
 * (`loggerInstance`), so the services and the HTTP layer write one stream; the
 * `req`, `res` and `err` serializers are Fastify's own.
 */
export function createLogger(config: Config, stream?: DestinationStream): Logger {
  const options = { ...(loggerOptions(config) as LoggerOptions) };
  const serializers = {
    req: (req: { method?: string; url?: string; headers?: Record<string, unknown>; host?: string; ip?: string; socket?: { remotePort?: number } }) => ({
      method: req.method,
      url: req.url,
      version: req.headers?.['accept-version'],
      host: req.host,
      remoteAddress: req.ip,
      remotePort: req.socket?.remotePort,
    }),
    res: (reply: { statusCode?: number }) => ({ statusCode: reply.statusCode }),
    err: pino.stdSerializers.err,
  };
  return stream ? pino({ ...options, serializers }, stream) : pino({ ...options, serializers });
}
