import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, OAuthError, errorCatalogue, type ErrorCode, type FieldError } from '../errors.js';
import { isDatabaseUnavailable } from '../infra/db/errors.js';
import { isDeadlineExceeded } from '../infra/deadline.js';
import { isHasherBusy } from '../infra/password-hasher.js';
import { noStore } from './no-store.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Render every error of this route the RFC 6749 §5.2 way ({error, error_description}). */
    oauthErrors?: boolean;
  }
}

function send(reply: FastifyReply, code: ErrorCode, message?: string, details?: FieldError[]) {
  const body: Record<string, unknown> = { error: code, message: message ?? errorCatalogue[code].message };
  if (details?.length) body.details = details;
  return reply.status(errorCatalogue[code].status).send(body);
}

/** RFC 6749 §5.2: `{error, error_description}`, never cached. */
function sendOAuth(reply: FastifyReply, err: Pick<OAuthError, 'status' | 'description' | 'extra'> & { code: string }) {
  return noStore(reply).status(err.status).send({ error: err.code, error_description: err.description, ...err.extra });
}

function validationDetails(err: FastifyError): FieldError[] {
  return (err.validation ?? []).map((v) => {
    const missing = (v.params as { missingProperty?: string } | undefined)?.missingProperty;
    const path = v.instancePath.replace(/^\//, '').replace(/\//g, '.');
    const field = [path, missing].filter(Boolean).join('.') || (err.validationContext ?? 'body');
    return { field, message: v.message ?? 'invalid' };
  });
}

/** Maps framework errors (parsing, validation, limits) to catalogue codes; null for unexpected ones. */
function classify(err: FastifyError): ErrorCode | null {
  if (err.validation) return 'validation_failed';
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return 'payload_too_large';
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return 'unsupported_media_type';
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return 'invalid_json';
  }
  if (err instanceof SyntaxError && err.statusCode === 400) return 'invalid_json';
  if (err.statusCode === 413) return 'payload_too_large';
  if (err.statusCode === 415) return 'unsupported_media_type';
  if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) return 'bad_request';
  return null;
}

/** One error handler for the whole API: stable codes out, internals only in the log. */
export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const oauth = request.routeOptions.config?.oauthErrors === true;
    if (error instanceof OAuthError) return sendOAuth(reply, error);
    if (error instanceof AppError) {
      if (error.status === 401) reply.header('www-authenticate', error.code === 'unauthorized' ? 'Bearer' : 'Bearer error="invalid_token"');
      if (error.retryAfterSeconds !== undefined) reply.header('retry-after', String(Math.max(1, Math.ceil(error.retryAfterSeconds))));
      // A limit on the OAuth2 endpoints keeps their body shape: {error: "rate_limited", error_description}.
      if (oauth && error.status === 429) return sendOAuth(reply, { status: 429, code: error.code, description: error.message });
      return send(reply, error.code, error.message, error.details);
    }
    const code = classify(error);
    if (code) {
      if (oauth && code !== 'payload_too_large' && code !== 'unsupported_media_type') {
        const details = code === 'validation_failed' ? validationDetails(error).map((d) => `${d.field}: ${d.message}`).join('; ') : errorCatalogue[code].message;
        return sendOAuth(reply, new OAuthError('invalid_request', details));
      }
      return send(reply, code, undefined, code === 'validation_failed' ? validationDetails(error) : undefined);
    }
    if (isHasherBusy(error)) {
      // BCRYPT_MAX_QUEUE hashes already wait: shed this one instead of queueing without bound.
      request.log.warn('password hashing queue full');
      reply.header('retry-after', '2');
      return send(reply, 'service_unavailable', 'Too many sign-ins are being processed; retry shortly.');
    }
    if (isDeadlineExceeded(error)) {
      // A second piece of work of a request already at its deadline (REQUEST_DEADLINE_MS).
      reply.header('retry-after', '5');
      return send(reply, 'service_unavailable', 'The request could not be completed in time; retry shortly.');
    }
    if (isDatabaseUnavailable(error)) {
      request.log.warn({ err: error }, 'database unavailable');
      reply.header('retry-after', '5');
      return send(reply, 'service_unavailable');
    }
    request.log.error({ err: error }, 'unhandled error');
    return send(reply, 'internal_error');
  });

  app.setNotFoundHandler((request, reply) => send(reply, 'not_found', `No route for ${request.method} ${request.url.split('?')[0]}.`));
}
