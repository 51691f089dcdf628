/** Sign-in without a password: passkeys (WebAuthn) and one-time codes or links sent by email. */
import { list, type Reader } from './reader.js';

export interface WebAuthnConfig {
  /** WEBAUTHN_RP_ID: the domain passkeys are bound to (the host of PUBLIC_URL, or a parent domain of it). */
  rpId: string;
  /** WEBAUTHN_RP_NAME: the name authenticators show. */
  rpName: string;
  /** WEBAUTHN_ORIGINS: every origin a ceremony may come from: web origins and `android:apk-key-hash:` origins of native apps. */
  origins: string[];
  /** WEBAUTHN_USER_VERIFICATION: `required` refuses authenticators that did not verify the user (PIN, biometrics); `preferred` accepts them. */
  userVerification: 'required' | 'preferred';
  /** How long a ceremony's challenge lives. */
  challengeSeconds: number;
}

export interface EmailSignInConfig {
  /** EMAIL_SIGN_IN_ENABLED: POST /auth/email-code and its grant; off by default. */
  enabled: boolean;
  /** EMAIL_SIGN_IN_TTL: how long a code (and its link) lives. */
  ttlSeconds: number;
  /** EMAIL_SIGN_IN_MAX_ATTEMPTS: wrong codes one code survives. */
  maxAttempts: number;
  /** EMAIL_SIGN_IN_CODE_LENGTH: digits of a code (6 to 8). */
  codeLength: number;
}

const ANDROID_ORIGIN = /^android:apk-key-hash:[A-Za-z0-9_-]{43}=?$/;

/** A web origin (`scheme://host[:port]`, no path) or an Android app's `android:apk-key-hash:<base64url sha256>`; null when neither. */
function origin(value: string): string | null {
  if (ANDROID_ORIGIN.test(value)) return value;
  try {
    const u = new URL(value);
    return (u.protocol === 'https:' || u.protocol === 'http:') && u.origin === value.replace(/\/$/, '') ? u.origin : null;
  } catch {
    // Not a URL: reported by the caller.
    return null;
  }
}

/** `publicUrl`: the default RP ID (its host) and origin; `appName`: the default RP name. */
export function webAuthnConfig(r: Reader, publicUrl: string, appName: string): WebAuthnConfig {
  const base = new URL(publicUrl || 'http://localhost');
  const rpId = r.string('WEBAUTHN_RP_ID', base.hostname).toLowerCase();
  const origins: string[] = [];
  for (const value of list(r.raw('WEBAUTHN_ORIGINS') ?? base.origin)) {
    const o = origin(value);
    if (o) origins.push(o);
    else r.problems.push(`WEBAUTHN_ORIGINS: "${value}" is neither a web origin (https://host[:port]) nor android:apk-key-hash:<base64url SHA-256>`);
  }
  // At least one web origin must be on the RP ID; others may be related origins (listed at /.well-known/webauthn).
  const onRpId = (o: string) => {
    const host = new URL(o).hostname;
    return host === rpId || host.endsWith(`.${rpId}`);
  };
  const web = origins.filter((o) => !o.startsWith('android:'));
  if (web.length && !web.some(onRpId)) r.problems.push(`WEBAUTHN_RP_ID: "${rpId}" must be the host of one of WEBAUTHN_ORIGINS, or a parent domain of it`);
  return {
    rpId,
    rpName: r.string('WEBAUTHN_RP_NAME', appName),
    origins,
    userVerification: r.oneOf('WEBAUTHN_USER_VERIFICATION', ['required', 'preferred'] as const, 'preferred'),
    challengeSeconds: r.duration('WEBAUTHN_CHALLENGE_TTL', 300, 30, 3600),
  };
}

export function emailSignInConfig(r: Reader): EmailSignInConfig {
  return {
    enabled: r.bool('EMAIL_SIGN_IN_ENABLED', false),
    ttlSeconds: r.duration('EMAIL_SIGN_IN_TTL', 600, 60, 3600),
    maxAttempts: r.int('EMAIL_SIGN_IN_MAX_ATTEMPTS', 5, 1, 20),
    codeLength: r.int('EMAIL_SIGN_IN_CODE_LENGTH', 6, 6, 8),
  };
}
