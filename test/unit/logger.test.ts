import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { loggerOptions, redactPaths } from '../../src/infra/logger.js';

const tty = process.stdout.isTTY;
afterEach(() => {
  process.stdout.isTTY = tty;
});

describe('loggerOptions', () => {
  it('pretty-prints with DEBUG=true in a terminal only', () => {
    process.stdout.isTTY = true;
    expect(loggerOptions(loadConfig({ DEBUG: 'true' }))).toMatchObject({ level: 'debug', transport: { target: 'pino-pretty' } });
    expect(loggerOptions(loadConfig({ DEBUG: 'false' }))).not.toHaveProperty('transport');
    process.stdout.isTTY = false;
    expect(loggerOptions(loadConfig({ DEBUG: 'true' }))).not.toHaveProperty('transport');
  });

  it('honours LOG_LEVEL and always redacts credentials', () => {
    const opts = loggerOptions(loadConfig({ LOG_LEVEL: 'warn' })) as { level: string; redact: { paths: string[] } };
    expect(opts.level).toBe('warn');
    for (const p of ['req.headers.authorization', 'req.headers.cookie', '*.password', '*.refresh_token', '*.token']) expect(redactPaths).toContain(p);
    expect(opts.redact.paths).toEqual(redactPaths);
  });
});
