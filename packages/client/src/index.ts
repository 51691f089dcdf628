export { createClient, TesseraClient, type MfaApi, type PasskeysApi } from './client.js';
export { TesseraError, TesseraNetworkError, type ErrorDetail } from './errors.js';
export { memoryStorage, localStorageAdapter, type TokenStorage } from './storage.js';
export { decodeJwtPayload } from './jwt.js';
export type {
  AuthEvent,
  AuthListener,
  ClientOptions,
  FetchLike,
  MfaRequired,
  MfaStatus,
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
