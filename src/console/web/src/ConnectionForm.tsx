import Form from '@rjsf/core';
import type { RJSFSchema, UiSchema, ValidatorType } from '@rjsf/utils';
import { useEffect, useMemo, useState } from 'react';
import { formSchema } from '../../shared/form-schemas';
import { changedDestination } from './destination';
import type { Connection, IntegrationType } from './types';
import { formValidator } from './validation';

export interface ConnectionFormValues {
  name?: string;
  displayName?: string;
  settings?: Record<string, unknown>;
  credentials?: Record<string, string | undefined>;
}

/**
 * The order settings appear in. The API server returns a schema's properties
 * sorted by name, so the author's order is lost: required settings first,
 * then choices, then the rest, each alphabetically.
 */
function settingsOrder(type: IntegrationType): string[] {
  const schema = type.spec.settingsSchema;
  const names = Object.keys(schema?.properties ?? {}).sort();
  const required = new Set(schema?.required ?? []);
  const rank = (n: string) => (required.has(n) ? 0 : schema?.properties?.[n]?.enum ? 1 : 2);
  return [...names].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

interface Props {
  type: IntegrationType;
  /** Set when editing: the form then has no name and credentials are optional unless the destination moves. */
  existing?: Connection;
  /** Names already used in the workspace, to refuse a duplicate before the API does. */
  takenNames?: string[];
  submitLabel: string;
  busy: boolean;
  onSubmit: (values: ConnectionFormValues) => void;
  onCancel: () => void;
}

/**
 * The form for one connection, drawn from the type's settingsSchema and
 * credentialFields by react-jsonschema-form and validated in the browser by
 * ajv with the same JSON Schema rules the admission webhook applies.
 * Credential inputs are password fields; their values live only in this
 * form's memory until they are sent, and are never shown again.
 */
export function ConnectionForm({ type, existing, takenNames = [], submitLabel, busy, onSubmit, onCancel }: Props) {
  const [values, setValues] = useState<ConnectionFormValues>(() => ({
    ...(existing ? {} : { name: '' }),
    displayName: existing?.spec.displayName ?? '',
    settings: structuredClone(existing?.spec.settings ?? {}),
    credentials: {},
  }));
  const moved = existing ? changedDestination(type, existing.spec.settings, values.settings) : [];
  const fields = useMemo(() => type.spec.credentialFields ?? [], [type]);
  const settingsProps = useMemo(() => type.spec.settingsSchema?.properties ?? {}, [type]);

  const variant = existing ? 'edit' : 'add';
  const schema = useMemo(() => formSchema(type, variant) as RJSFSchema, [type, variant]);
  const [validator, setValidator] = useState<ValidatorType<ConnectionFormValues> | undefined>();
  const [validatorError, setValidatorError] = useState<string | undefined>();
  useEffect(() => {
    formValidator(type, variant, schema).then(setValidator, () =>
      setValidatorError('The form could not be loaded. Reload the page and try again.'),
    );
  }, [type, variant, schema]);
  // Credentials that must be entered again because the destination moved (ciphertext is bound to it).
  const mustReenter =
    existing && moved.length > 0 ? fields.filter((f) => existing.spec.credentials?.[f.name]).map((f) => f.name) : [];

  const uiSchema = useMemo<UiSchema<ConnectionFormValues>>(
    () => ({
      'ui:order': ['name', 'displayName', 'settings', 'credentials'],
      name: {
        'ui:autofocus': !existing,
        'ui:placeholder': `${type.metadata.name}-production`,
        'ui:autocomplete': 'off',
      },
      displayName: { 'ui:autocomplete': 'off', ...(existing ? { 'ui:autofocus': true } : {}) },
      settings: {
        'ui:order': settingsOrder(type),
        ...Object.fromEntries(Object.keys(settingsProps).map((k) => [k, { 'ui:autocomplete': 'off' }])),
      },
      credentials: Object.fromEntries(
        fields.map((f) => [
          f.name,
          {
            'ui:widget': 'password',
            'ui:autocomplete': 'new-password',
            'ui:placeholder': existing?.status?.credentials?.[f.name]?.hint
              ? `Current value ends in ${existing.status.credentials[f.name]!.hint}`
              : '',
          },
        ]),
      ),
      'ui:submitButtonOptions': { norender: true },
    }),
    [type, existing, fields, settingsProps],
  );

  if (validatorError)
    return (
      <div className="callout callout-danger" role="alert">
        {validatorError}
      </div>
    );
  if (!validator)
    return (
      <p className="muted" role="status">
        Loading the form…
      </p>
    );
  return (
    <Form<ConnectionFormValues>
      schema={schema}
      uiSchema={uiSchema}
      formData={values}
      validator={validator}
      idPrefix="conn"
      noHtml5Validate
      showErrorList={false}
      focusOnFirstError
      customValidate={(data, errors) => {
        if (!existing && data?.name && takenNames.includes(data.name))
          errors.name?.addError('A connection with this name already exists in this workspace.');
        for (const f of mustReenter) {
          if (!data?.credentials?.[f])
            (errors.credentials as unknown as Record<string, { addError(m: string): void } | undefined> | undefined)?.[
              f
            ]?.addError('Enter this credential again for the new destination.');
        }
        return errors;
      }}
      transformErrors={(errors) =>
        errors.map((e) => {
          if (e.name === 'pattern' && e.property === '.name')
            return {
              ...e,
              message: 'Use lowercase letters, digits and dashes, starting and ending with a letter or digit.',
            };
          if (e.name === 'required') return { ...e, message: 'This field is required.' };
          return e;
        })
      }
      onChange={(e) => setValues(e.formData as ConnectionFormValues)}
      onSubmit={(e) => onSubmit(e.formData as ConnectionFormValues)}
      className="connection-form"
    >
      {moved.length > 0 ? (
        <div className="callout callout-warning" role="status">
          <strong>Enter the credentials again.</strong> You changed{' '}
          {moved.map((n) => settingsProps[n]?.title ?? n).join(', ')}, which decides where the credentials are sent.
          Stored credentials are bound to their destination and cannot be reused for a new one.
        </div>
      ) : null}
      <div className="form-actions">
        <button type="button" className="button button-secondary" onClick={onCancel}>
          Cancel
        </button>
        <button type="submit" className="button button-primary" disabled={busy}>
          {busy ? 'Saving…' : submitLabel}
        </button>
      </div>
    </Form>
  );
}
