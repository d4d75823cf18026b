import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import createPrecompiledValidator from '@rjsf/validator-ajv8/lib/createPrecompiledValidator.js';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { packageRoot } from '../../dev/binaries.js';
import { formSchema, FORM_VARIANTS, type FormType, type FormVariant } from '../shared/form-schemas.js';
import { validatorModule } from './validators.js';

const require = createRequire(import.meta.url);
const dir = mkdtempSync(path.join(tmpdir(), 'atoll-validators-'));
const typesDir = path.join(packageRoot(), 'config', 'types');
const builtins = readdirSync(typesDir)
  .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
  .map((f) => parse(readFileSync(path.join(typesDir, f), 'utf8')) as FormType & { metadata: { name: string } });

/** Loads a generated module as the page does, with ajv's runtime helpers as its only imports. */
async function load(type: FormType & { metadata: { name: string } }, variant: FormVariant) {
  const file = path.join(dir, `${type.metadata.name}-${variant}.mjs`);
  writeFileSync(file, validatorModule(type.metadata.name, '1', type, variant));
  const mod = (await import(pathToFileURL(file).href)) as {
    default: (req: (n: string) => unknown) => Record<string, unknown>;
  };
  return createPrecompiledValidator(mod.default(require) as never, formSchema(type, variant) as never);
}

describe('precompiled form validators', () => {
  it.each(builtins.flatMap((t) => FORM_VARIANTS.map((v) => [t.metadata.name, v] as const)))(
    'compiles the %s %s form',
    async (name, variant) => {
      const validator = await load(
        builtins.find((t) => t.metadata.name === name)!,
        variant,
      );
      expect(
        validator.isValid(
          formSchema(
            builtins.find((t) => t.metadata.name === name)!,
            variant,
          ) as never,
          {},
          formSchema(
            builtins.find((t) => t.metadata.name === name)!,
            variant,
          ) as never,
        ),
      ).toBe(variant !== 'add');
    },
  );

  it('applies the type’s JSON Schema rules as the webhook does', async () => {
    const type = builtins.find((t) => t.metadata.name === 'http-api')!;
    const schema = formSchema(type, 'add') as never;
    const validator = await load(type, 'add');
    const errors = (data: unknown) => validator.validateFormData(data, schema).errors.map((e) => e.property);
    expect(errors({ name: 'orders', settings: { baseURL: 'https://api.example.com' } })).toEqual([]);
    expect(errors({ name: 'Orders', settings: { baseURL: 'https://api.example.com' } })).toEqual(['.name']);
    expect(errors({ name: 'orders', settings: { baseURL: 'ftp://x', auth: 'carrier-pigeon' } })).toEqual(
      expect.arrayContaining(['.settings.baseURL', '.settings.auth']),
    );
    expect(errors({ name: 'orders', settings: {} })).toEqual(['.settings.baseURL']);
  });
});
