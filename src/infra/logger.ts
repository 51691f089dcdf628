import type { FastifyServerOptions } from 'fastify';
import type { DestinationStream } from 'pino';
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
  if (config.debug && process.stdout.isTTY) return { ...base, transport: { target: 'pino-pretty', options: { translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' } } };
  return base;
}
