// Every table, for drizzle-kit and for typed queries.
export * from '../../features/accounts/tables.js';
export * from '../../features/sessions/tables.js';
export * from '../../features/email-tokens/tables.js';
export * from '../../features/mail/tables.js';
export * from '../../features/audit/tables.js';
export * from '../../features/mfa/tables.js';
export * from '../../features/rbac/tables.js';
export * from '../../features/social/tables.js';
