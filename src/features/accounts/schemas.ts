import { Type } from 'typebox';
import type { Authenticated } from '../sessions/service.js';
import type { UserRow } from './tables.js';

const Name = Type.Union([Type.String({ maxLength: 100 }), Type.Null()]);
// Length and content rules live in password-policy.ts so they answer with their own codes.
export const Password = Type.String({ maxLength: 1024, description: '8+ characters, at most 72 bytes in UTF-8' });

export const RegisterBody = Type.Object(
  {
    email: Type.String({ minLength: 1, maxLength: 320 }),
    password: Password,
    first_name: Type.Optional(Name),
    last_name: Type.Optional(Name),
  },
  { additionalProperties: false },
);

export const UpdateProfileBody = Type.Object({ first_name: Type.Optional(Name), last_name: Type.Optional(Name) }, { additionalProperties: false });

export const ChangePasswordBody = Type.Object({ current_password: Type.String({ maxLength: 1024 }), new_password: Password }, { additionalProperties: false });

export const DeleteAccountBody = Type.Object({ password: Type.String({ maxLength: 1024 }) }, { additionalProperties: false });

export const UserBody = Type.Object({
  id: Type.String({ format: 'uuid' }),
  email: Type.String(),
  email_verified: Type.Boolean(),
  first_name: Type.Union([Type.String(), Type.Null()]),
  last_name: Type.Union([Type.String(), Type.Null()]),
  has_password: Type.Boolean(),
  created_at: Type.String({ format: 'date-time' }),
  updated_at: Type.String({ format: 'date-time' }),
});

export function toUserBody(u: UserRow) {
  return {
    id: u.id,
    email: u.email,
    email_verified: u.emailVerifiedAt !== null,
    first_name: u.firstName,
    last_name: u.lastName,
    has_password: u.passwordHash !== null,
    created_at: u.createdAt.toISOString(),
    updated_at: u.updatedAt.toISOString(),
  };
}

/**
 * GET /users/me from the session check's own read (the session row joined with its user): no
 * second query, and a cached session serves it from memory. Every change Tessera makes to these
 * fields forgets the user's cached sessions on every instance (sessions.forgetUser), so a caller
 * reads its own writes; docs/operations.md "Session cache".
 */
export function toUserBodyOfSession(s: Authenticated['session']) {
  return {
    id: s.userId,
    email: s.email,
    email_verified: s.emailVerifiedAt !== null,
    first_name: s.firstName,
    last_name: s.lastName,
    has_password: s.hasPassword,
    created_at: s.userCreatedAt.toISOString(),
    updated_at: s.userUpdatedAt.toISOString(),
  };
}
