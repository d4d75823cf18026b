import type { RJSFSchema, ValidatorType } from '@rjsf/utils';
import createPrecompiledValidator from '@rjsf/validator-ajv8/lib/createPrecompiledValidator.js';
import * as ucs2length from 'ajv/dist/runtime/ucs2length';
import * as equal from 'ajv/dist/runtime/equal';
import * as uri from 'ajv/dist/runtime/uri';
import * as validationError from 'ajv/dist/runtime/validation_error';
import * as formats from 'ajv-formats/dist/formats';
import type { FormVariant } from '../../shared/form-schemas';
import type { IntegrationType } from './types';

// The only modules generated validator code may use (the backend checks the same list).
const RUNTIME: Record<string, unknown> = {
  'ajv/dist/runtime/ucs2length': ucs2length,
  'ajv/dist/runtime/equal': equal,
  'ajv/dist/runtime/uri': uri,
  'ajv/dist/runtime/validation_error': validationError,
  'ajv-formats/dist/formats': formats,
};

function runtimeRequire(name: string): unknown {
  const m = RUNTIME[name];
  if (!m) throw new Error(`validator needs an unknown module ${name}`);
  return m;
}

const loaded = new Map<string, Promise<ValidatorType>>();

/**
 * The ajv validator of a form, compiled by the backend and loaded as a
 * same-origin module: @rjsf/validator-ajv8's precompiled mode, so the page
 * runs under a Content-Security-Policy without 'unsafe-eval'.
 */
export function formValidator(
  type: IntegrationType & { metadata: { resourceVersion?: string } },
  variant: FormVariant,
  schema: RJSFSchema,
): Promise<ValidatorType> {
  const url = `/api/validators/${encodeURIComponent(type.metadata.name)}/${variant}.js?rv=${encodeURIComponent(type.metadata.resourceVersion ?? '')}`;
  let p = loaded.get(url);
  if (!p) {
    p = (
      import(/* @vite-ignore */ url) as Promise<{ default: (req: (n: string) => unknown) => Record<string, unknown> }>
    ).then((mod) => createPrecompiledValidator(mod.default(runtimeRequire) as never, schema));
    p.catch(() => loaded.delete(url));
    loaded.set(url, p);
  }
  return p;
}
