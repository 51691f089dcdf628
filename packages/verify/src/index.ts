export { createVerifier, ACCESS_TOKEN_TYP, MAX_IAT_SKEW_SECONDS, type Algorithm, type Verifier, type VerifierOptions } from './verifier.js';
export { VerifyError, isVerifyError, type VerifyErrorCode } from './errors.js';
export { hasPermission, hasRole, missingPermissions, permits, type AccessTokenClaims } from './claims.js';
export { bearerToken } from './http.js';
