import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';
import { describe, expect, it } from 'vitest';
import { cyclesOf, folderGraph, problemsOf } from '../../scripts/check-cycles.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * Lints `code` as if it were the file `file` of the repository, with the repository's config (nothing is
 * written). The file does not exist, so the type-aware rules are off for it; the import rules are not.
 */
async function lint(file: string, code: string): Promise<string[]> {
  const eslint = new ESLint({ cwd: root, overrideConfig: [{ files: ['**/lint-fixture.ts'], ...tseslint.configs.disableTypeChecked }] });
  const [result] = await eslint.lintText(code, { filePath: path.join(root, file) });
  return (result?.messages ?? []).map((m) => `${m.ruleId ?? 'parse'}: ${m.message}`);
}

describe('the layer rules of `npm run lint` (docs/architecture.md, "Rules")', () => {
  it('refuses infra importing a feature, and accepts infra importing infra', async () => {
    const wrong = await lint('src/infra/lint-fixture.ts', "import { users } from '../features/accounts/tables.js';\nexport const t = users;\n");
    expect(wrong.join('\n')).toMatch(/no-restricted-imports: .*infra\/ is the bottom layer/);
    const right = await lint('src/infra/lint-fixture.ts', "import { systemClock } from './clock.js';\nexport const c = systemClock;\n");
    expect(right).toEqual([]);
  }, 120_000);

  it("refuses a value import of a feature in http/, a feature's reaching into another feature's repo, and a feature wiring the app", async () => {
    const http = await lint('src/http/lint-fixture.ts', "import { normaliseEmail } from '../features/accounts/email.js';\nexport const n = normaliseEmail;\n");
    expect(http.join('\n')).toMatch(/http\/ holds transport concerns/);
    const typeOnly = await lint(
      'src/http/lint-fixture.ts',
      "import type { SessionService } from '../features/sessions/service.js';\nexport type S = SessionService;\n",
    );
    expect(typeOnly).toEqual([]);
    const repo = await lint('src/features/mfa/lint-fixture.ts', "import * as outbox from '../outbox/repo.js';\nexport const o = outbox;\n");
    expect(repo.join('\n')).toMatch(/never through the other's repo/);
    const wiring = await lint(
      'src/features/mfa/lint-fixture.ts',
      "import { createServices } from '../../composition/services.js';\nexport const c = createServices;\n",
    );
    expect(wiring.join('\n')).toMatch(/Only the composition/);
  }, 120_000);
});

describe('check-cycles (run by `npm run lint`)', () => {
  it('finds a file-level cycle and the folder-level cycle it makes', () => {
    const tree = {
      'src/infra/a.ts': ['src/features/x/b.ts'],
      'src/features/x/b.ts': ['src/infra/a.ts'],
    };
    expect(cyclesOf(tree)).toHaveLength(1);
    expect(folderGraph(tree)).toEqual({ infra: ['features/x'], 'features/x': ['infra'] });
    const problems = problemsOf(tree, []);
    expect(problems).toContain('file cycle: src/features/x/b.ts → src/infra/a.ts → src/features/x/b.ts');
    expect(problems).toContain('folder cycle: features/x → infra → features/x');
  });

  it('finds a folder-level cycle between features without any file-level one, and accepts an acyclic graph', () => {
    const tree = {
      'src/features/x/service.ts': ['src/features/y/service.ts'],
      'src/features/y/service.ts': ['src/infra/clock.ts'],
      'src/features/y/routes.ts': ['src/features/x/service.ts'],
      'src/infra/clock.ts': [],
    };
    expect(problemsOf(tree, [])).toEqual(['folder cycle: features/x → features/y → features/x']);
    const acyclic = {
      'src/features/x/service.ts': ['src/features/y/service.ts'],
      'src/features/y/service.ts': ['src/infra/clock.ts'],
      'src/infra/clock.ts': [],
    };
    expect(problemsOf(acyclic, [])).toEqual([]);
    // A listed cycle that no longer exists must be deleted from the list.
    expect(problemsOf(acyclic, ['features/x → features/y → features/x'])).toEqual([
      'gone (delete it from KNOWN_FEATURE_CYCLES): features/x → features/y → features/x',
    ]);
  });
});
