import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, OAuthError, errorCatalogue, type ErrorCode, type FieldError } from '../errors.js';
import { isDatabaseUnavailable } from '../infra/db/errors.js';
import { isDeadlineExceeded } from '../infra/deadline.js';
import { isHasherBusy } from '../infra/password-hasher.js';
import { noStore } from './no-store.js';
import { allowedMethods, registerRouteMethods } from './route-methods.js';
import { validationDetails, validationSentence } from './validation-messages.js';

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
  return noStore(reply)
    .status(err.status)
    .send({ error: err.code, error_description: err.description, ...err.extra });
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
      const details = code === 'validation_failed' ? validationDetails(error) : undefined;
      if (oauth) {
        // RFC 6749 §5.2 for every answer of the OAuth2 endpoints: a malformed request is invalid_request;
        // a limit or an unsupported content type keeps its catalogue code as `error`.
        if (code === 'payload_too_large' || code === 'unsupported_media_type')
          return sendOAuth(reply, { status: errorCatalogue[code].status, code, description: errorCatalogue[code].message });
        return sendOAuth(reply, new OAuthError('invalid_request', details ? validationSentence(details, 'parameter') : errorCatalogue[code].message));
      }
      return send(reply, code, details ? `The request is invalid: ${validationSentence(details, 'field')}` : undefined, details);
    }
    // The answers below end in `send`: on the OAuth2 endpoints, in the §5.2 shape with the same code.
    const failWith = (failure: 'service_unavailable' | 'internal_error', message?: string) =>
      oauth
        ? sendOAuth(reply, { status: errorCatalogue[failure].status, code: failure, description: message ?? errorCatalogue[failure].message })
        : send(reply, failure, message);
    if (isHasherBusy(error)) {
      // BCRYPT_MAX_QUEUE hashes already wait, or the wait would pass BCRYPT_MAX_WAIT_MS: shed this one.
      request.log.warn('password hashing queue full');
      reply.header('retry-after', String(error.retryAfterSeconds));
      return failWith('service_unavailable', 'Too many sign-ins are being processed; retry shortly.');
    }
    if (isDeadlineExceeded(error)) {
      // A second piece of work of a request already at its deadline (REQUEST_DEADLINE_MS).
      reply.header('retry-after', '5');
      return failWith('service_unavailable', 'The request could not be completed in time; retry shortly.');
    }
    if (isDatabaseUnavailable(error)) {
      request.log.warn({ err: error }, 'database unavailable');
      reply.header('retry-after', '5');
      return failWith('service_unavailable');
    }
    request.log.error({ err: error }, 'unhandled error');
    return failWith('internal_error');
  });

  // A path that exists for other methods is a 405 with Allow (RFC 9110 §15.5.6); only an unknown path is a 404.
  registerRouteMethods(app);
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '/';
    const allow = allowedMethods(app, path);
    if (allow.length)
      return send(reply.header('allow', allow.join(', ')), 'method_not_allowed', `${request.method} is not allowed on ${path}; use ${allow.join(' or ')}.`);
    return send(reply, 'not_found', `No route for ${request.method} ${path}.`);
  });
}
