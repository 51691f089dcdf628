import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/dist/', 'dist/', 'node_modules/', 'data/', 'coverage/', 'migrations/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['*.js', 'bin/*.js', 'src/infra/*.js', 'scripts/*.mjs'] }, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      // Fastify plugins and handlers are async by contract, awaiting or not.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    files: ['test/**', 'bench/**'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unnecessary-type-assertion': 'off',
    },
  },
  // The layers (docs/architecture.md, "Rules"): what each folder of src/ may import. Only the
  // composition (src/composition/), app.ts and the entry points (cli, main, worker) wire everything.
  ...layerZones(),
  { files: ['**/*.js', '**/*.mjs'], ...tseslint.configs.disableTypeChecked, languageOptions: { globals: globals.node } },
);

/** `@typescript-eslint/no-restricted-imports` per folder of src/. */
function layerZones() {
  const wiring = ['**/composition/**', '**/app.js', '**/cli.js', '**/cli-*.js', '**/main.js', '**/worker.js', '**/worker-process.js', '**/http-server.js'];
  const rule = (...patterns) => ({ '@typescript-eslint/no-restricted-imports': ['error', { patterns }] });
  const wires = { group: wiring, message: 'Only the composition, app.ts and the entry points wire the application (docs/architecture.md).' };
  return [
    {
      files: ['src/infra/**'],
      rules: rule(wires, {
        group: ['**/features/**', '**/http/**'],
        message: 'infra/ is the bottom layer: it imports no feature and nothing of http/ (docs/architecture.md).',
      }),
    },
    {
      files: ['src/config/**', 'src/errors.ts'],
      rules: rule(wires, {
        regex: '(^|/)(features/(?!social/providers/[a-z0-9-]+-defaults\\.js$)|http/|infra/)',
        message: "config/ and errors.ts are shared leaves: they import no layer (a provider's constant defaults excepted).",
      }),
    },
    {
      files: ['src/http/**'],
      rules: rule(wires, {
        group: ['**/features/**'],
        allowTypeImports: true,
        message: 'http/ holds transport concerns: it imports feature types at most; inject feature logic (docs/architecture.md).',
      }),
    },
    {
      files: ['src/features/**'],
      rules: rule(
        wires,
        { group: ['../*/repo.js', '../../*/repo.js'], message: "A feature talks to another through its service (or types), never through the other's repo." },
        {
          group: ['../*/tables.js', '../../*/tables.js', '!../accounts/tables.js', '!../../accounts/tables.js'],
          allowTypeImports: true,
          message: "A feature does not query another feature's tables (the users table, which every row hangs from, excepted); use its service.",
        },
      ),
    },
  ];
}
