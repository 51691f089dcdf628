import { createHmac } from 'node:crypto';
import type { AuthenticatorTransport } from '@simplewebauthn/server';
import type { WebAuthnConfig } from '../../config/index.js';
import type { PasskeyRow } from './tables.js';

/** What the passkey feature needs of the WebAuthn settings. */
export type PasskeySettings = Pick<WebAuthnConfig, 'rpId' | 'rpName' | 'origins' | 'userVerification' | 'challengeSeconds'>;

/** The WebAuthn user handle of an account: its id (a random UUID: no personal data), as UTF-8 bytes. */
export const userHandleOf = (userId: string) => new TextEncoder().encode(userId);

/** The same handle as a response carries it (base64url). */
export const encodedUserHandleOf = (userId: string) => Buffer.from(userId, 'utf8').toString('base64url');

/**
 * RFC 8176 `amr` of a passkey sign-in. A passkey that cannot be backed up (backup eligibility off:
 * a security key, a device-bound platform key) is a hardware-secured key, `hwk`; a synced passkey
 * (backup eligible: it leaves the device, e.g. iCloud Keychain, Google Password Manager) is a
 * software-secured key, `swk`. `user` is added only when the authenticator reported user
 * verification (PIN, biometrics).
 */
export const passkeyAmr = (backupEligible: boolean, userVerified: boolean): string[] => [backupEligible ? 'swk' : 'hwk', ...(userVerified ? ['user'] : [])];

/** `single_device` or `multi_device`, as WebAuthn names the two kinds. */
export const deviceType = (p: Pick<PasskeyRow, 'backupEligible'>): 'multi_device' | 'single_device' => (p.backupEligible ? 'multi_device' : 'single_device');

/**
 * A credential id for an address without passkeys (or without an account): derived from the address
 * under a server secret, so asking twice gives the same id and the answer looks like a real one.
 */
export function lookalikeCredentialId(secret: Buffer, email: string): string {
  return createHmac('sha256', secret).update(`webauthn-lookalike-credential\n${email}`).digest().toString('base64url');
}

export const LOOKALIKE_TRANSPORTS: AuthenticatorTransport[] = ['hybrid', 'internal'];

/** What the API shows of a passkey. */
export function passkeyView(p: PasskeyRow) {
  return {
    id: p.id,
    name: p.name,
    device_type: deviceType(p),
    backed_up: p.backedUp,
    transports: p.transports,
    created_at: p.createdAt.toISOString(),
    last_used_at: p.lastUsedAt?.toISOString() ?? null,
  };
}

export type PasskeyView = ReturnType<typeof passkeyView>;
