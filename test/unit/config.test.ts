import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/index.js';

/** The ConfigError thrown by loadConfig(env); fails the test when it does not throw one. */
function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`loadConfig(${JSON.stringify(env)}) did not throw`);
}

const pem = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'tessera-config-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const MFA_KEY = Buffer.alloc(32, 7).toString('base64');

describe('loadConfig defaults', () => {
  it('runs with nothing set', () => {
    const c = loadConfig({});
    expect(c.env).toBe('development');
    expect(c.port).toBe(8000);
    // Outside production, loopback only (like the original); SERVER=0.0.0.0 for containers.
    expect(c.host).toBe('127.0.0.1');
    expect(c.jwt.algorithm).toBe('RS256');
    expect(c.jwt.accessTokenMinutes).toBe(15);
    expect(c.jwt.refreshTokenDays).toBe(30);
    expect(c.jwt.refreshReuseGraceSeconds).toBe(10);
    expect(c.jwt.privateKeyPem).toBeNull();
    expect(c.passwords.bcryptRounds).toBe(12);
    expect(c.requireEmailVerification).toBe(true);
    expect(c.debug).toBe(false);
    expect(c.trustProxy).toBe(false);
    expect(c.database.url).toBeNull();
    expect(c.dataDir).toBe(path.resolve('./data'));
    expect(path.isAbsolute(c.dataDir)).toBe(true);
    expect(c.publicUrl).toBe('http://localhost:8000');
    expect(c.jwt.issuer).toBe('http://localhost:8000');
  });

  it('JWT_ISSUER defaults to PUBLIC_URL (without a trailing slash) and can be set apart', () => {
    expect(loadConfig({ PUBLIC_URL: 'https://auth.example.com/' }).jwt.issuer).toBe('https://auth.example.com');
    const c = loadConfig({ PUBLIC_URL: 'https://auth.example.com', JWT_ISSUER: 'https://issuer.example.com' });
    expect(c.publicUrl).toBe('https://auth.example.com');
    expect(c.jwt.issuer).toBe('https://issuer.example.com');
  });

  it('resolves a relative DATA_DIR to an absolute path', () => {
    expect(loadConfig({ DATA_DIR: 'var/tessera' }).dataDir).toBe(path.resolve('var/tessera'));
  });
});

describe('the original .env names', () => {
  it('SERVER and SERVER_PORT set the listen address', () => {
    const c = loadConfig({ SERVER: '127.0.0.1', SERVER_PORT: '9100' });
    expect(c.host).toBe('127.0.0.1');
    expect(c.port).toBe(9100);
    expect(c.publicUrl).toBe('http://localhost:9100');
    expect(loadConfig({ SERVER_PORT: '0' }).port).toBe(0);
  });

  it('DB_* build a PostgreSQL URL with the password encoded', () => {
    const password = 'p@ss/w:rd?#%';
    const c = loadConfig({ DB_HOST: 'db.internal', DB_PORT: '6543', DB_NAME: 'auth', DB_USER: 'svc', DB_PASSWORD: password });
    const url = new URL(c.database.url!);
    expect(url.protocol).toBe('postgresql:');
    expect(url.hostname).toBe('db.internal');
    expect(url.port).toBe('6543');
    expect(url.pathname).toBe('/auth');
    expect(decodeURIComponent(url.username)).toBe('svc');
    expect(decodeURIComponent(url.password)).toBe(password);
  });

  it('DB_HOST alone uses the default port, user and database, no password', () => {
    const url = new URL(loadConfig({ DB_HOST: 'localhost' }).database.url!);
    expect(url.port).toBe('5432');
    expect(url.username).toBe('postgres');
    expect(url.password).toBe('');
    expect(url.pathname).toBe('/tessera');
  });

  it('DATABASE_URL wins over DB_*', () => {
    const c = loadConfig({ DATABASE_URL: 'postgres://a:b@primary:5432/main', DB_HOST: 'other', DB_NAME: 'x', DB_PASSWORD: 'y' });
    expect(c.database.url).toBe('postgres://a:b@primary:5432/main');
  });

  it('JWT_ALGORITHM, ACCESS_TOKEN_EXPIRE_MINUTES, REFRESH_TOKEN_EXPIRE_DAYS and DEBUG are read', () => {
    const c = loadConfig({ JWT_ALGORITHM: 'EdDSA', ACCESS_TOKEN_EXPIRE_MINUTES: '5', REFRESH_TOKEN_EXPIRE_DAYS: '7', DEBUG: 'true' });
    expect(c.jwt.algorithm).toBe('EdDSA');
    expect(c.jwt.accessTokenMinutes).toBe(5);
    expect(c.jwt.refreshTokenDays).toBe(7);
    expect(c.debug).toBe(true);
    expect(c.logLevel).toBe('debug');
  });
});

describe('validation', () => {
  it('reports every bad variable in one ConfigError', () => {
    const err = configError({
      SERVER_PORT: 'abc',
      BCRYPT_ROUNDS: '3',
      JWT_ALGORITHM: 'HS256',
      ACCESS_TOKEN_EXPIRE_MINUTES: '0',
      DEBUG: 'maybe',
    });
    expect(err.problems).toHaveLength(5);
    for (const name of ['SERVER_PORT', 'BCRYPT_ROUNDS', 'JWT_ALGORITHM', 'ACCESS_TOKEN_EXPIRE_MINUTES', 'DEBUG']) {
      expect(err.problems.filter((p) => p.startsWith(`${name}:`))).toHaveLength(1);
      expect(err.message).toContain(name);
    }
    expect(err.problems.find((p) => p.startsWith('JWT_ALGORITHM:'))).toContain('RS256, ES256, EdDSA');
  });

  it('rejects out-of-range ports and non-integers', () => {
    expect(configError({ SERVER_PORT: '65536' }).problems[0]).toMatch(/^SERVER_PORT:/);
    expect(configError({ SERVER_PORT: '-1' }).problems[0]).toMatch(/^SERVER_PORT:/);
    expect(configError({ SERVER_PORT: '80.5' }).problems[0]).toMatch(/^SERVER_PORT:/);
  });

  it('in production, requires PUBLIC_URL, PRIVATE_KEY, a database, MFA_ENCRYPTION_KEY, SMTP_SERVER and METRICS_TOKEN, naming each', () => {
    const err = configError({ NODE_ENV: 'production' });
    expect(err.problems).toHaveLength(6);
    expect(err.problems.some((p) => p.startsWith('PUBLIC_URL'))).toBe(true);
    expect(err.problems.some((p) => p.startsWith('METRICS_TOKEN'))).toBe(true);
    expect(err.problems.some((p) => p.startsWith('MFA_ENCRYPTION_KEY'))).toBe(true);
    expect(err.problems.some((p) => p.startsWith('PRIVATE_KEY'))).toBe(true);
    expect(err.problems.some((p) => p.startsWith('DATABASE_URL'))).toBe(true);
    expect(err.problems.some((p) => p.startsWith('SMTP_SERVER'))).toBe(true);
  });

  it('SERVER: loopback outside production, every interface in production, or as set', () => {
    expect(loadConfig({ NODE_ENV: 'development' }).host).toBe('127.0.0.1');
    expect(loadConfig({ NODE_ENV: 'test' }).host).toBe('127.0.0.1');
    expect(loadConfig({ SERVER: '0.0.0.0' }).host).toBe('0.0.0.0');
    const ready = {
      NODE_ENV: 'production',
      PUBLIC_URL: 'https://auth.example.com',
      PRIVATE_KEY: pem,
      DATABASE_URL: 'postgres://u:p@db/tessera',
      MFA_ENCRYPTION_KEY: MFA_KEY,
      SMTP_SERVER: 'smtp.example.com',
      METRICS_TOKEN: 'a-scrape-token',
    };
    expect(loadConfig(ready).host).toBe('0.0.0.0');
    expect(loadConfig({ ...ready, SERVER: '10.1.2.3' }).host).toBe('10.1.2.3');
  });

  it('in production without PUBLIC_URL, PUBLIC_URL is the one problem (no localhost issuer, no localhost links in emails)', () => {
    const ready = {
      NODE_ENV: 'production',
      PRIVATE_KEY: pem,
      DATABASE_URL: 'postgres://u:p@db/tessera',
      MFA_ENCRYPTION_KEY: MFA_KEY,
      SMTP_SERVER: 'smtp.example.com',
      METRICS_TOKEN: 'a-scrape-token',
    };
    const err = configError(ready);
    expect(err.problems).toHaveLength(1);
    expect(err.problems[0]).toMatch(/^PUBLIC_URL: required when NODE_ENV=production/);
    expect(err.message).toContain('PUBLIC_URL');
    // Blank is not set.
    expect(configError({ ...ready, PUBLIC_URL: '  ' }).problems).toEqual([err.problems[0]]);
    const c = loadConfig({ ...ready, PUBLIC_URL: 'https://auth.example.com/' });
    expect([c.publicUrl, c.jwt.issuer]).toEqual(['https://auth.example.com', 'https://auth.example.com']);
    // Outside production the localhost default stays (zero-setup development).
    expect(loadConfig({}).publicUrl).toBe('http://localhost:8000');
  });

  it('in production without SMTP_SERVER, SMTP_SERVER is the one problem', () => {
    const err = configError({
      NODE_ENV: 'production',
      PUBLIC_URL: 'https://auth.example.com',
      PRIVATE_KEY: pem,
      DATABASE_URL: 'postgres://u:p@db/tessera',
      MFA_ENCRYPTION_KEY: MFA_KEY,
      METRICS_TOKEN: 'a-scrape-token',
    });
    expect(err.problems).toHaveLength(1);
    expect(err.problems[0]).toMatch(/^SMTP_SERVER\b/);
    expect(err.problems[0]).toContain('NODE_ENV=production');
    expect(err.message).toContain('SMTP_SERVER');
  });

  it('MFA_ENCRYPTION_KEY is 32 bytes, base64 or hex', () => {
    expect(loadConfig({ MFA_ENCRYPTION_KEY: MFA_KEY }).mfa.encryptionKey?.length).toBe(32);
    expect(loadConfig({ MFA_ENCRYPTION_KEY: 'ab'.repeat(32) }).mfa.encryptionKey).toEqual(Buffer.alloc(32, 0xab));
    expect(loadConfig({}).mfa.encryptionKey).toBeNull();
    for (const bad of ['short', Buffer.alloc(16).toString('base64'), 'ab'.repeat(31)]) {
      expect(configError({ MFA_ENCRYPTION_KEY: bad }).problems[0]).toMatch(/^MFA_ENCRYPTION_KEY: expected 32 bytes/);
    }
  });

  it('in production without METRICS_TOKEN, METRICS_TOKEN is the one problem; METRICS_PUBLIC=true serves /metrics openly on purpose', () => {
    const prod = {
      NODE_ENV: 'production',
      PUBLIC_URL: 'https://auth.example.com',
      PRIVATE_KEY: pem,
      DATABASE_URL: 'postgres://u:p@db/tessera',
      SMTP_SERVER: 'smtp.example.com',
      MFA_ENCRYPTION_KEY: MFA_KEY,
    };
    for (const env of [prod, { ...prod, METRICS_PUBLIC: 'false' }]) {
      const err = configError(env);
      expect(err.problems).toHaveLength(1);
      expect(err.problems[0]).toMatch(/^METRICS_TOKEN\b/);
      expect(err.problems[0]).toContain('NODE_ENV=production');
      expect(err.problems[0]).toContain('METRICS_PUBLIC=true');
    }
    const open = loadConfig({ ...prod, METRICS_PUBLIC: 'true' });
    expect(open.metricsToken).toBeNull();
    expect(open.metricsPublic).toBe(true);
    expect(loadConfig({ ...prod, METRICS_TOKEN: 'a-scrape-token' }).metricsToken).toBe('a-scrape-token');
    expect(configError({ ...prod, METRICS_PUBLIC: 'maybe' }).problems.some((p) => p.startsWith('METRICS_PUBLIC:'))).toBe(true);
    // Outside production /metrics stays open by default.
    expect(loadConfig({}).metricsToken).toBeNull();
  });

  it('in production, runs once PRIVATE_KEY, a database, MFA_ENCRYPTION_KEY, SMTP_SERVER and METRICS_TOKEN are set', () => {
    const c = loadConfig({
      NODE_ENV: 'production',
      PUBLIC_URL: 'https://auth.example.com',
      PRIVATE_KEY: pem,
      DATABASE_URL: 'postgres://u:p@db/tessera',
      SMTP_SERVER: 'smtp.example.com',
      MFA_ENCRYPTION_KEY: MFA_KEY,
      METRICS_TOKEN: 'a-scrape-token',
    });
    expect(c.env).toBe('production');
    expect(c.jwt.privateKeyPem).toBe(pem.trim());
    expect(c.email.smtp?.host).toBe('smtp.example.com');
    const viaDbVars = loadConfig({
      NODE_ENV: 'production',
      PUBLIC_URL: 'https://auth.example.com',
      PRIVATE_KEY: pem,
      DB_HOST: 'db',
      DB_PASSWORD: 'p',
      SMTP_SERVER: 'smtp.example.com',
      MFA_ENCRYPTION_KEY: MFA_KEY,
      METRICS_TOKEN: 'a-scrape-token',
    });
    expect(viaDbVars.database.url).toBe('postgresql://postgres:p@db:5432/tessera');
  });

  it('never echoes a database password', () => {
    const secret = 'Sup3rS3cret';
    const values = [
      `mysql://admin:${secret}@db.example.com/tessera`,
      `mysql://admin:${secret}@with-at@db.example.com/tessera`,
      `admin:${secret}@db.example.com/tessera`,
      `postgres://admin:${secret}@db.example.com:notaport/tessera`,
    ];
    for (const DATABASE_URL of values) {
      const err = configError({ DATABASE_URL });
      expect(err.problems).toHaveLength(1);
      expect(err.problems[0]).toMatch(/^DATABASE_URL:/);
      expect(err.message).not.toContain(secret);
      expect(err.message).not.toContain('with-at');
    }
    // A bad DB_PORT next to DB_PASSWORD: the password stays out of the message too.
    const err = configError({ DB_HOST: 'db', DB_PORT: 'x', DB_PASSWORD: secret });
    expect(err.problems[0]).toMatch(/^DB_PORT:/);
    expect(err.message).not.toContain(secret);
  });
});

describe('PEM keys', () => {
  it('accepts an inline PEM with literal \\n escapes', () => {
    const escaped = pem.replace(/\n/g, '\\n');
    expect(escaped).not.toContain('\n');
    const c = loadConfig({ PRIVATE_KEY: escaped, JWT_ALGORITHM: 'ES256' });
    expect(c.jwt.privateKeyPem).toBe(pem);
    expect(createPrivateKey(c.jwt.privateKeyPem!).asymmetricKeyType).toBe('ec');
  });

  it('accepts an inline PEM with real newlines', () => {
    // Surrounding whitespace is trimmed; the key itself is intact.
    const c = loadConfig({ PRIVATE_KEY: `\n${pem}\n` });
    expect(c.jwt.privateKeyPem).toBe(pem.trim());
    expect(createPrivateKey(c.jwt.privateKeyPem!).asymmetricKeyType).toBe('ec');
  });

  it('rejects an inline value that is not PEM, without echoing it', () => {
    const err = configError({ PRIVATE_KEY: 'not-a-key-value' });
    expect(err.problems).toHaveLength(1);
    expect(err.problems[0]).toMatch(/^PRIVATE_KEY:/);
    expect(err.message).not.toContain('not-a-key-value');
  });

  it('reads PRIVATE_KEY_FILE and PUBLIC_KEY_FILE', () => {
    const file = path.join(dir, 'private.pem');
    writeFileSync(file, pem);
    const c = loadConfig({ PRIVATE_KEY_FILE: file, PUBLIC_KEY_FILE: file });
    expect(c.jwt.privateKeyPem).toBe(pem);
    expect(c.jwt.publicKeyPem).toBe(pem);
  });

  it('refuses PRIVATE_KEY and PRIVATE_KEY_FILE together', () => {
    const file = path.join(dir, 'both.pem');
    writeFileSync(file, pem);
    const err = configError({ PRIVATE_KEY: pem, PRIVATE_KEY_FILE: file });
    expect(err.problems).toHaveLength(1);
    expect(err.problems[0]).toContain('PRIVATE_KEY and PRIVATE_KEY_FILE');
  });

  it('names PRIVATE_KEY_FILE when the file does not exist', () => {
    const missing = path.join(dir, 'does-not-exist.pem');
    const err = configError({ PRIVATE_KEY_FILE: missing });
    expect(err.problems).toHaveLength(1);
    expect(err.problems[0]).toMatch(/^PRIVATE_KEY_FILE:/);
    expect(err.problems[0]).toContain(missing);
    expect(err.problems[0]).toContain('ENOENT');
  });
});

describe('TRUST_PROXY', () => {
  it('is off by default and parses booleans, hop counts and address lists', () => {
    expect(loadConfig({}).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: 'false' }).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: 'true' }).trustProxy).toBe(true);
    expect(loadConfig({ TRUST_PROXY: '2' }).trustProxy).toBe(2);
    expect(loadConfig({ TRUST_PROXY: '10.0.0.0/8,127.0.0.1' }).trustProxy).toEqual(['10.0.0.0/8', '127.0.0.1']);
    expect(loadConfig({ TRUST_PROXY: ' loopback , ::1, fd00::/8 ' }).trustProxy).toEqual(['loopback', '::1', 'fd00::/8']);
  });

  it('rejects values that are not addresses or CIDRs', () => {
    // 'abc' and 'deadbeef' look like hex; Fastify would crash at start-up on them.
    for (const value of ['garbage', '10.0.0.0/8,nope', 'abc', 'deadbeef', '10.0.0.0/33', '::1/129', '300.1.1.1', '10.0.0.0/8/8']) {
      const err = configError({ TRUST_PROXY: value });
      expect(err.problems, value).toHaveLength(1);
      expect(err.problems[0]).toMatch(/^TRUST_PROXY:/);
    }
  });
});

describe('REDIS_URL', () => {
  it('is null by default and reads a redis:// or rediss:// URL', () => {
    expect(loadConfig({}).redisUrl).toBeNull();
    expect(loadConfig({ REDIS_URL: 'redis://cache:6379/0' }).redisUrl).toBe('redis://cache:6379/0');
    expect(loadConfig({ REDIS_URL: 'rediss://:secret@cache.example.com:6380' }).redisUrl).toBe('rediss://:secret@cache.example.com:6380');
  });

  it('CELERY_BROKER_URL is an alias; REDIS_URL wins when both are set', () => {
    expect(loadConfig({ CELERY_BROKER_URL: 'redis://broker:6379/1' }).redisUrl).toBe('redis://broker:6379/1');
    const both = loadConfig({ REDIS_URL: 'redis://primary:6379/0', CELERY_BROKER_URL: 'redis://broker:6379/1' });
    expect(both.redisUrl).toBe('redis://primary:6379/0');
  });

  it('a URL that is not redis is a problem, without echoing its password', () => {
    for (const REDIS_URL of ['amqp://guest:Sup3rS3cret@rabbit:5672//', 'http://cache:6379', 'not a url']) {
      const err = configError({ REDIS_URL });
      expect(err.problems, REDIS_URL).toHaveLength(1);
      expect(err.problems[0]).toMatch(/^REDIS_URL:/);
      expect(err.message).not.toContain('Sup3rS3cret');
    }
    const celery = configError({ CELERY_BROKER_URL: 'amqp://guest:guest@rabbit:5672//' });
    expect(celery.problems).toHaveLength(1);
    expect(celery.problems[0]).toMatch(/^CELERY_BROKER_URL:/);
  });
});

describe('SMTP', () => {
  it('without SMTP_SERVER there is no SMTP (mail goes to files)', () => {
    expect(loadConfig({}).email.smtp).toBeNull();
    // Port and credentials alone do not turn SMTP on.
    expect(loadConfig({ SMTP_PORT: '25', SMTP_USERNAME: 'u' }).email.smtp).toBeNull();
  });

  it('defaults to port 587 with STARTTLS, no credentials and a 20 s timeout', () => {
    expect(loadConfig({ SMTP_SERVER: 'smtp.example.com' }).email.smtp).toEqual({
      host: 'smtp.example.com',
      port: 587,
      secure: false,
      username: null,
      password: null,
      timeoutMs: 20000,
    });
  });

  it('port 465 implies TLS from the first byte, 587 does not, SMTP_SECURE overrides both ways', () => {
    const smtp = (env: Record<string, string>) => loadConfig({ SMTP_SERVER: 'smtp.example.com', ...env }).email.smtp!;
    expect(smtp({ SMTP_PORT: '465' }).secure).toBe(true);
    expect(smtp({ SMTP_PORT: '587' }).secure).toBe(false);
    expect(smtp({ SMTP_PORT: '25' }).secure).toBe(false);
    expect(smtp({ SMTP_PORT: '465', SMTP_SECURE: 'false' }).secure).toBe(false);
    expect(smtp({ SMTP_PORT: '587', SMTP_SECURE: 'true' }).secure).toBe(true);
    expect(smtp({ SMTP_PORT: '2525', SMTP_SECURE: 'yes' })).toMatchObject({ port: 2525, secure: true });
  });

  it('reads the credentials and the timeout', () => {
    const smtp = loadConfig({ SMTP_SERVER: 'smtp.example.com', SMTP_USERNAME: 'mailer', SMTP_PASSWORD: 'pw', SMTP_TIMEOUT_MS: '5000' }).email.smtp!;
    expect(smtp).toMatchObject({ username: 'mailer', password: 'pw', timeoutMs: 5000 });
  });

  it('a bad SMTP_PORT or SMTP_SECURE is a problem', () => {
    const err = configError({ SMTP_SERVER: 'smtp.example.com', SMTP_PORT: '70000', SMTP_SECURE: 'sometimes' });
    expect(err.problems).toHaveLength(2);
    expect(err.problems.some((p) => p.startsWith('SMTP_PORT:'))).toBe(true);
    expect(err.problems.some((p) => p.startsWith('SMTP_SECURE:'))).toBe(true);
  });
});

describe('email settings', () => {
  it('defaults', () => {
    const c = loadConfig({});
    expect(c.requireEmailVerification).toBe(true);
    expect(c.appName).toBe('Tessera');
    expect(c.email.confirmTtlSeconds).toBe(86400);
    expect(c.email.passwordResetTtlSeconds).toBe(1800);
    expect(c.email.workerConcurrency).toBe(5);
    expect(c.email.from).toBe('Tessera <no-reply@localhost>');
    expect(c.email.templatesDir).toBeNull();
    expect(c.email.emailConfirmedRedirectUrl).toBeNull();
    expect(c.email.passwordResetUrl).toBeNull();
  });

  it('REQUIRE_EMAIL_VERIFICATION can be turned off', () => {
    expect(loadConfig({ REQUIRE_EMAIL_VERIFICATION: 'false' }).requireEmailVerification).toBe(false);
    expect(loadConfig({ REQUIRE_EMAIL_VERIFICATION: '0' }).requireEmailVerification).toBe(false);
  });

  it('SMTP_FROM defaults to APP_NAME at the PUBLIC_URL host; SMTP_FROM set wins', () => {
    const c = loadConfig({ APP_NAME: 'Acme ID', PUBLIC_URL: 'https://auth.acme.example:8443/base/' });
    expect(c.appName).toBe('Acme ID');
    expect(c.email.from).toBe('Acme ID <no-reply@auth.acme.example>');
    expect(loadConfig({ PUBLIC_URL: 'https://auth.acme.example' }).email.from).toBe('Tessera <no-reply@auth.acme.example>');
    expect(loadConfig({ SMTP_FROM: 'Support <help@acme.example>', APP_NAME: 'Acme ID' }).email.from).toBe('Support <help@acme.example>');
  });

  it('EMAIL_TEMPLATES_DIR resolves to an absolute path', () => {
    expect(loadConfig({ EMAIL_TEMPLATES_DIR: 'my-templates' }).email.templatesDir).toBe(path.resolve('my-templates'));
  });

  it('WORKER_CONCURRENCY is read and range-checked', () => {
    expect(loadConfig({ WORKER_CONCURRENCY: '12' }).email.workerConcurrency).toBe(12);
    expect(configError({ WORKER_CONCURRENCY: '0' }).problems[0]).toMatch(/^WORKER_CONCURRENCY:/);
  });

  const goodDurations: Array<[string, number]> = [
    ['90', 90],
    ['120s', 120],
    ['30m', 1800],
    ['24h', 86400],
    ['7d', 604800],
    ['2H', 7200],
  ];

  it.each(goodDurations)('EMAIL_CONFIRM_TTL and PASSWORD_RESET_TTL accept %s (= %i s)', (value, seconds) => {
    expect(loadConfig({ EMAIL_CONFIRM_TTL: value }).email.confirmTtlSeconds).toBe(seconds);
    expect(loadConfig({ PASSWORD_RESET_TTL: value }).email.passwordResetTtlSeconds).toBe(seconds);
  });

  it('45s is read as 45 seconds: allowed for EMAIL_RESEND_INTERVAL, below the 60 s minimum of the TTLs', () => {
    expect(loadConfig({ EMAIL_RESEND_INTERVAL: '45s' }).email.resendIntervalSeconds).toBe(45);
    expect(loadConfig({ EMAIL_RESEND_INTERVAL: '90' }).email.resendIntervalSeconds).toBe(90);
    expect(loadConfig({ EMAIL_RESEND_INTERVAL: '2m' }).email.resendIntervalSeconds).toBe(120);
    const err = configError({ EMAIL_CONFIRM_TTL: '45s', PASSWORD_RESET_TTL: '45s' });
    expect(err.problems).toHaveLength(2);
    expect(err.problems.every((p) => p.includes('"45s"'))).toBe(true);
  });

  it.each(['abc', '0', '-5', '5w', '1.5h', '30 minutes', 'h'])('EMAIL_CONFIRM_TTL and PASSWORD_RESET_TTL reject %j', (value) => {
    const err = configError({ EMAIL_CONFIRM_TTL: value, PASSWORD_RESET_TTL: value });
    expect(err.problems).toHaveLength(2);
    const confirm = err.problems.find((p) => p.startsWith('EMAIL_CONFIRM_TTL:'));
    const reset = err.problems.find((p) => p.startsWith('PASSWORD_RESET_TTL:'));
    expect(confirm).toContain(`"${value}"`);
    expect(reset).toContain(`"${value}"`);
  });

  it('rejects durations out of range (confirm: 60 s to 30 days; reset: 60 s to 7 days)', () => {
    expect(loadConfig({ EMAIL_CONFIRM_TTL: '30d', PASSWORD_RESET_TTL: '7d' }).email).toMatchObject({
      confirmTtlSeconds: 30 * 86400,
      passwordResetTtlSeconds: 7 * 86400,
    });
    expect(loadConfig({ EMAIL_CONFIRM_TTL: '60', PASSWORD_RESET_TTL: '1m' }).email).toMatchObject({ confirmTtlSeconds: 60, passwordResetTtlSeconds: 60 });

    const tooLong = configError({ EMAIL_CONFIRM_TTL: '31d', PASSWORD_RESET_TTL: '8d' });
    expect(tooLong.problems).toHaveLength(2);
    expect(tooLong.problems.some((p) => p.startsWith('EMAIL_CONFIRM_TTL:') && p.includes('"31d"'))).toBe(true);
    expect(tooLong.problems.some((p) => p.startsWith('PASSWORD_RESET_TTL:') && p.includes('"8d"'))).toBe(true);

    const tooShort = configError({ EMAIL_CONFIRM_TTL: '59', PASSWORD_RESET_TTL: '45s' });
    expect(tooShort.problems).toHaveLength(2);
    expect(tooShort.problems.some((p) => p.startsWith('EMAIL_CONFIRM_TTL:'))).toBe(true);
    expect(tooShort.problems.some((p) => p.startsWith('PASSWORD_RESET_TTL:'))).toBe(true);

    // Beyond what a Number holds exactly: still a problem, not a silent huge TTL.
    expect(configError({ PASSWORD_RESET_TTL: '99999999999999999999d' }).problems[0]).toMatch(/^PASSWORD_RESET_TTL:/);
  });

  it('a bad duration is reported together with other problems', () => {
    const err = configError({ EMAIL_CONFIRM_TTL: 'abc', PASSWORD_RESET_TTL: '5w', REDIS_URL: 'http://x', SMTP_SERVER: 'smtp', SMTP_PORT: 'x' });
    expect(err.problems.map((p) => p.split(':')[0]).sort()).toEqual(['EMAIL_CONFIRM_TTL', 'PASSWORD_RESET_TTL', 'REDIS_URL', 'SMTP_PORT']);
  });
});
