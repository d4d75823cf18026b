// ESLint: typescript-eslint's type-checked rules over everything TypeScript in
// the repository (sources, unit tests, integration suites, benches, the
// console). Formatting is Prettier's job; the rules here are about bugs.
// Why each choice: docs/adr/0027-lint-and-format.md.
import js from '@eslint/js';
import stylistic from '@stylistic/eslint-plugin';
import reactHooks from 'eslint-plugin-react-hooks';
import { defineConfig, globalIgnores } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const consoleWeb = 'src/console/web/src/**/*.{ts,tsx}';

export default defineConfig(
  globalIgnores(['dist/', 'coverage/', '.atoll/', '.cache/', 'charts/', 'src/api/v1alpha1/generated.ts']),

  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        // Explicit projects rather than the project service: unit tests and
        // integration suites are outside tsconfig.json (it is the build).
        project: ['./tsconfig.eslint.json', './src/console/web/tsconfig.eslint.json'],
        tsconfigRootDir: import.meta.dirname,
      },
      globals: globals.node,
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    plugins: { '@stylistic': stylistic },
    rules: {
      // Prettier wraps code at 120; what it cannot wrap must still fit 140.
      // Error messages stay whole so they can be found with grep.
      '@stylistic/max-len': [
        'error',
        { code: 140, ignoreStrings: true, ignoreTemplateLiterals: true, ignoreRegExpLiterals: true, ignoreUrls: true },
      ],

      // Promises: the operator's failure modes (a dropped rejection, a
      // callback that returns a promise nobody awaits).
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/return-await': ['error', 'error-handling-correctness-only'],
      '@typescript-eslint/prefer-promise-reject-errors': 'error',
      '@typescript-eslint/only-throw-error': 'error',

      // Correctness checks beyond the preset, all cheap here.
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      '@typescript-eslint/no-unnecessary-type-assertion': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-import-type-side-effects': 'error',
      eqeqeq: ['error', 'always', { null: 'ignore' }],

      // An async function without await is how a fake or a small adapter meets
      // a Promise-returning interface, and it turns a throw into a rejection;
      // the promise bugs that matter are caught by the rules above.
      '@typescript-eslint/require-await': 'off',
      // Refusing control characters in names, headers and templates is the
      // point of every regular expression that contains them.
      'no-control-regex': 'off',

      // `_name` marks a parameter a signature needs but the body does not use.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true },
      ],
    },
  },

  // Tests read JSON bodies and use asymmetric matchers (expect.any and
  // friends are typed `any`): a wrong shape fails the assertion itself.
  {
    files: ['**/*.test.ts', 'test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
    },
  },

  // The console's browser code: its own tsconfig (DOM, JSX) and React's hook rules.
  {
    files: [consoleWeb],
    ...reactHooks.configs.flat.recommended,
    languageOptions: { globals: globals.browser },
  },

  // Plain JavaScript (this file, the generator script) is not type-checked.
  {
    files: ['**/*.{js,mjs}'],
    extends: [tseslint.configs.disableTypeChecked],
  },
);
