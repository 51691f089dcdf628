// Every table, for drizzle-kit (`npm run db:generate`, drizzle.config.ts). The application itself
// queries each feature's own tables; infra/db knows no feature.
export * from './features/accounts/tables.js';
export * from './features/sessions/tables.js';
export * from './features/email-tokens/tables.js';
export * from './features/mail/tables.js';
export * from './features/audit/tables.js';
export * from './features/mfa/tables.js';
export * from './features/rbac/tables.js';
export * from './features/social/tables.js';
export * from './features/clients/tables.js';
export * from './features/oidc/tables.js';
export * from './features/passkeys/tables.js';
export * from './features/email-sign-in/tables.js';
