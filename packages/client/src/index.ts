export { createClient, TesseraClient, type MfaApi, type PasskeysApi } from './client.js';
export { TesseraError, TesseraNetworkError, type ErrorDetail } from './errors.js';
export { memoryStorage, localStorageAdapter, type TokenStorage } from './storage.js';
export { decodeJwtPayload } from './jwt.js';
export { buildAuthorizationUrl, checkCallback, checkIdToken, type AuthorizationOptions } from './redirect-flow.js';
export type {
  AuthorizationRequest,
  AuthEvent,
  AuthListener,
  ClientOptions,
  FetchLike,
  MfaRequired,
  MfaStatus,
  RedirectSignedIn,
  Passkey,
  PasskeySignInOptions,
  ProviderCredentials,
  Session,
  SessionInfo,
  SignInResult,
  SignedIn,
  SocialAuthorization,
  TotpEnrolment,
  User,
  WebAuthnCredentialJSON,
  WebAuthnOptionsJSON,
} from './types.js';
