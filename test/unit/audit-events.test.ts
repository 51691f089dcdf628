import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { auditEventCatalogue } from '../../src/features/audit/events.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

describe('docs/audit.md', () => {
  const documented = () => {
    const found: string[] = [];
    for (const line of readFileSync(path.join(root, 'docs/audit.md'), 'utf8').split('\n')) {
      const m = /^\|\s*`([a-z0-9_]+)`\s*\|/.exec(line);
      if (m) found.push(m[1]!);
    }
    return found;
  };

  it('lists every audit event type of the catalogue, once', () => {
    const doc = documented();
    for (const type of Object.keys(auditEventCatalogue))
      expect(
        doc.filter((t) => t === type),
        `docs/audit.md: ${type}`,
      ).toHaveLength(1);
  });

  it('lists no type that the catalogue does not have', () => {
    const known = new Set(Object.keys(auditEventCatalogue));
    expect(documented().filter((t) => !known.has(t))).toEqual([]);
  });
});

describe('the audit event catalogue', () => {
  const sources = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
      const full = path.join(dir, e.name);
      if (e.isDirectory()) return sources(full);
      return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [full] : [];
    });

  it('has only types some code records (no dead entries)', () => {
    const code = sources(path.join(root, 'src'))
      .filter((f) => !f.endsWith(path.join('audit', 'events.ts')))
      .map((f) => readFileSync(f, 'utf8'))
      .join('\n');
    const unused = Object.keys(auditEventCatalogue).filter((type) => !code.includes(`'${type}'`));
    expect(unused).toEqual([]);
  });

  it('has snake_case types and a one-line description each', () => {
    for (const [type, description] of Object.entries(auditEventCatalogue)) {
      expect(type).toMatch(/^[a-z][a-z0-9]*(_[a-z0-9]+)*$/);
      expect(description).not.toMatch(/\n/);
      expect(description.length).toBeGreaterThan(10);
    }
  });
});
