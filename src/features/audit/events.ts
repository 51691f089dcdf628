/**
 * The audit event catalogue: every `type` an audit entry can have, with what it
 * records. Types are stable snake_case strings (stored in `audit_events.type` and
 * returned by `GET /users/me/audit`); docs/audit.md lists them and a test keeps the
 * two in sync. `details` never holds a secret.
 */
export const auditEventCatalogue = {
  // sign-in
  sign_in:
    'A sign-in succeeded (`method`: `password`, `passkey` (`passkey`: its id; `amr`), `email_code`, `email_link` or a provider id; with MFA, `mfa_sign_in` instead).',
  sign_in_failed: 'A password sign-in failed (`reason`; `email` masked when no account has the address).',
  sign_in_throttled: 'Failed passwords started a delay (`scope`: `account`, `client` or `ip`; `failures`, `delay_seconds`).',
  reauth_failed: 'A wrong current password on a signed-in endpoint (`action`).',
  mfa_sign_in: 'The second step of a sign-in succeeded (`method`: `totp` or `recovery_code`).',
  mfa_failed: 'A wrong authenticator or recovery code (`context`, `attempts`).',
  passkey_sign_in_failed:
    'A passkey sign-in was refused (`reason`: `unknown_credential`, `invalid`, `user_verification`, `disabled` or `concurrent_use`; `passkey`).',
  passkey_clone_suspected:
    "A passkey's signature counter went backwards, or its backup eligibility changed: possibly a cloned authenticator; the sign-in was refused (`passkey`, `stored_count`, `count`).",
  email_code_failed: 'A wrong emailed sign-in code or link (`attempts`; `email` masked when no account has the address).',

  // sessions
  logout: 'A session was ended by its own token (`session`).',
  logout_all: 'Every session of the user was ended (`sessions`: how many).',
  session_revoked: 'The user ended one of their sessions by its id (`session`).',
  refresh_token_reuse: 'An old refresh token came back after the grace window: the session was revoked (`session`).',
  token_revoked:
    'A client revoked a token (RFC 7009, POST /auth/revoke): its session ended (`session`, `token_type`: `refresh_token` or `access_token`, `client` unless the implicit first-party client).',
  oauth_code_reuse: 'A one-time sign-in code was used twice: the session it opened was ended (`method`, `session`).',
  hosted_sign_in:
    'A sign-in through the hosted pages of the OpenID Provider opened a browser session (`client`, `session`, `method`: the `amr` of the sign-in joined by `+`, e.g. `pwd`, `pwd+otp`, `fed`).',
  authorization_code_reuse: 'An authorization code of a registered client came back: the session it opened was ended (`client`, `session`, `session_ended`).',
  end_session: 'RP-initiated logout ended the browser session and its client sessions (`sessions`: how many; `client`).',
  consent_granted: 'The user allowed a third-party application on the consent page (`client`, `scopes`).',
  consent_revoked: 'The user withdrew the consent given to an application; its sessions of the user ended (`client`, `sessions`: how many).',

  // the account
  password_changed: 'The user changed their password (`session`: the one kept).',
  password_reset: 'The password was reset through an emailed link (`sessions_ended`).',
  email_change_requested: 'A change of address was asked for (`new_email`, masked).',
  email_changed: 'The new address was confirmed through its link.',
  mfa_enabled: 'An authenticator app was set up (`method`: `totp`).',
  mfa_disabled: 'The authenticator app was removed.',
  mfa_recovery_codes_regenerated: 'New recovery codes replaced the old ones.',
  passkey_added: 'A passkey was registered (`passkey`: its id, `name`, `device_type`: `single_device` or `multi_device`).',
  passkey_renamed: 'A passkey was renamed (`passkey`, `name`).',
  passkey_removed: 'A passkey was deleted (`passkey`, `name`).',
  account_created_by_email: 'The account was created by its first sign-in with an emailed code or link (its address confirmed by it).',
  identity_linked: 'A third-party identity was linked (`method`: the provider; `via`: `new_account`, `email` or `explicit`).',
  identity_unlinked: 'A third-party identity was unlinked (`method`: the provider; `via: address_proven` when dropped by a proof of the address).',
  user_imported: 'The account was created by `tessera import` (`source`, `source_ref`).',

  // administration (`actor`: the administrator's id, or `cli`)
  admin_user_created: 'An administrator created the account (`roles`).',
  admin_user_disabled: 'An administrator disabled the account.',
  admin_user_enabled: 'An administrator enabled the account again.',
  admin_user_deleted: 'An administrator deleted the account.',
  admin_role_assigned: 'An administrator gave the user a role (`role`).',
  admin_role_removed: 'An administrator took a role away (`role`).',
  admin_sessions_revoked: "An administrator ended the user's sessions (`sessions`: how many).",
  admin_role_created: 'An administrator created a role (`role`, `permissions`).',
  admin_role_updated: "An administrator changed a role's permissions (`role`, `permissions`).",
  admin_role_deleted: 'An administrator deleted a role (`role`).',
  client_created: 'An OAuth client was registered (`client`, `type`, `method`, `grants`, `first_party`; `actor` or `cli`). docs/clients.md',
  client_updated: 'An OAuth client was changed (`client`, `fields`; `actor` or `cli`).',
  client_secret_rotated: 'An OAuth client got a new secret (`client`, `overlap_seconds`: how long the previous one still works).',
  client_deleted: 'An OAuth client was deleted (`client`, `sessions`: how many of its sessions ended).',
} as const satisfies Record<string, string>;

/** The `type` of an audit event: only catalogue entries (a typo does not compile). */
export type AuditEventType = keyof typeof auditEventCatalogue;
