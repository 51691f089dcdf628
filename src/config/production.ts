/**
 * What production refuses to run without: a public URL, signing keys, PostgreSQL,
 * the MFA encryption key, SMTP, a bounded body and a protected /metrics. Checked
 * once every variable is read, so every problem is listed together.
 */
import type { MfaConfig } from './accounts.js';
import type { DatabaseConfig } from './database.js';
import type { EmailConfig } from './mail.js';
import type { Reader } from './reader.js';
import type { ServerConfig } from './server.js';
import type { JwtConfig } from './tokens.js';

/** The parts of the configuration the production rules look at. */
export interface ProductionChecked extends Pick<ServerConfig, 'env' | 'bodyLimit' | 'metricsToken' | 'metricsPublic'> {
  jwt: Pick<JwtConfig, 'privateKeyPem' | 'keysDir'>;
  database: Pick<DatabaseConfig, 'url'>;
  mfa: Pick<MfaConfig, 'encryptionKey'>;
  email: Pick<EmailConfig, 'smtp'>;
}

export function checkProduction(r: Reader, config: ProductionChecked): void {
  if (config.env !== 'production') return;
  if (!r.raw('PUBLIC_URL')) {
    r.problems.push(
      'PUBLIC_URL: required when NODE_ENV=production (the public address of Tessera, e.g. https://auth.example.com); it is the token issuer and the base of every emailed link, which would otherwise point at http://localhost',
    );
  }
  if (!config.jwt.privateKeyPem && !config.jwt.keysDir) {
    r.problems.push(
      'PRIVATE_KEY (or PRIVATE_KEY_FILE, or a KEYS_DIR of keys): required when NODE_ENV=production; generate one with `npx tessera keys generate`, or `KEYS_DIR=… npx tessera keys rotate`',
    );
  }
  if (!config.database.url) {
    r.problems.push(
      'DATABASE_URL (or DB_HOST, DB_NAME, DB_USER, DB_PASSWORD): required when NODE_ENV=production; the embedded database is for development only',
    );
  }
  if (!config.mfa.encryptionKey)
    r.problems.push('MFA_ENCRYPTION_KEY: required when NODE_ENV=production (32 bytes, base64 or hex: `openssl rand -base64 32`); it encrypts the TOTP secrets');
  if (!config.email.smtp)
    r.problems.push(
      'SMTP_SERVER (with SMTP_PORT, SMTP_FROM, SMTP_USERNAME, SMTP_PASSWORD): required when NODE_ENV=production; without it mail is only written to files',
    );
  if (config.bodyLimit > 1024 * 1024) r.problems.push('BODY_LIMIT_BYTES: keep it at most 1 MiB in production');
  if (!config.metricsToken && !config.metricsPublic) {
    r.problems.push(
      'METRICS_TOKEN: required when NODE_ENV=production (`openssl rand -base64 32`; scrape with Authorization: Bearer <token>), or set METRICS_PUBLIC=true if only a private network reaches /metrics',
    );
  }
}
