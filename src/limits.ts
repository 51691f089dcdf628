// Sizes of input that several layers agree on (request schemas, services, provider adapters).
// A leaf module: it imports nothing, so routes, services and infra may all use it.
// Rate limits are configuration, not here.

/** A token a client hands back: refresh token, provider access token (GitHub, Facebook). */
export const MAX_TOKEN_LENGTH = 4096;

/** Apple's `user` form field (a small JSON object with the name and email). */
export const MAX_APPLE_USER_LENGTH = 4096;

/** An app's `state` and the raw `nonce` given to a provider SDK. */
export const MAX_STATE_LENGTH = 512;

/** The `User-Agent` kept with a session and an audit entry; longer ones are cut, not refused. */
export const MAX_USER_AGENT_LENGTH = 512;
