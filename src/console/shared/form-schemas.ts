/**
 * The JSON Schemas of the console's forms, built from an IntegrationType.
 * Shared by the browser (which draws the forms) and the backend (which
 * compiles them to validator code ahead of use, so the page needs no
 * 'unsafe-eval'). Both must build byte-identical schemas from the same type,
 * so this module is pure and has no imports.
 */

export interface FormType {
  spec: {
    settingsSchema?: Record<string, unknown>;
    credentialFields?: Array<{ name: string; displayName?: string; required?: boolean; description?: string }>;
  };
}

export type FormVariant = 'add' | 'edit' | 'rotate';
export const FORM_VARIANTS: readonly FormVariant[] = ['add', 'edit', 'rotate'];

/** Connection names: a DNS label, at most 63 characters. */
export const CONNECTION_NAME_PATTERN = '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$';
const MAX_CREDENTIAL_LENGTH = 16384;

type Schema = Record<string, unknown>;

function credentialProperties(type: FormType, titlePrefix: string): Record<string, Schema> {
  return Object.fromEntries(
    (type.spec.credentialFields ?? []).map((f) => {
      const label = f.displayName ?? f.name;
      return [
        f.name,
        {
          type: 'string',
          title: titlePrefix ? `${titlePrefix} ${label.charAt(0).toLowerCase()}${label.slice(1)}` : label,
          ...(f.description ? { description: f.description } : {}),
          maxLength: MAX_CREDENTIAL_LENGTH,
        },
      ];
    }),
  );
}

/**
 * The form schema of one variant: add (name, display name, settings, credentials), edit (no name; credentials
 * optional), rotate (credentials only).
 */
export function formSchema(type: FormType, variant: FormVariant): Schema {
  const fields = type.spec.credentialFields ?? [];
  if (variant === 'rotate') return { type: 'object', properties: credentialProperties(type, 'New') };
  const settings: Schema = { ...(type.spec.settingsSchema ?? { type: 'object', properties: {} }), title: 'Settings' };
  delete settings.$schema;
  delete settings.$id;
  const properties: Record<string, Schema> = {
    ...(variant === 'add'
      ? {
          name: {
            type: 'string',
            title: 'Connection name',
            description: 'How workloads refer to it. Lowercase letters, digits and dashes.',
            pattern: CONNECTION_NAME_PATTERN,
            maxLength: 63,
          },
        }
      : {}),
    displayName: {
      type: 'string',
      title: 'Display name',
      description: 'Shown in this panel, for example "Production" or "EU analytics".',
      maxLength: 256,
    },
    settings,
  };
  if (fields.length > 0) {
    properties.credentials = {
      type: 'object',
      title: 'Credentials',
      description:
        variant === 'edit'
          ? 'Leave empty to keep the current values. Stored encrypted; never shown again.'
          : 'Stored encrypted; never shown again, only the last characters as a hint.',
      ...(variant === 'add' ? { required: fields.filter((f) => f.required).map((f) => f.name) } : {}),
      properties: credentialProperties(type, ''),
    };
  }
  return { type: 'object', ...(variant === 'add' ? { required: ['name'] } : {}), properties };
}
