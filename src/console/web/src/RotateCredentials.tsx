import Form from '@rjsf/core';
import type { RJSFSchema, UiSchema, ValidatorType } from '@rjsf/utils';
import { useEffect, useMemo, useState } from 'react';
import { formSchema } from '../../shared/form-schemas';
import { Dialog } from './Dialog';
import type { Connection, IntegrationType } from './types';
import { formValidator } from './validation';

/** Replace one or more credentials of a connection: sealed at admission, version + 1, the old value is never used again. */
export function RotateCredentials(props: {
  connection: Connection;
  type: IntegrationType;
  busy: boolean;
  error?: string;
  onSubmit: (values: Record<string, string>) => void;
  onClose: () => void;
}) {
  const all = props.type.spec.credentialFields ?? [];
  const present = all.filter((f) => props.connection.spec.credentials?.[f.name]);
  const shown = present.length > 0 ? present : all;
  const [values, setValues] = useState<Record<string, string | undefined>>({});
  const status = props.connection.status?.credentials ?? {};
  const schema = useMemo(() => formSchema(props.type, 'rotate') as RJSFSchema, [props.type]);
  const [validator, setValidator] = useState<ValidatorType<Record<string, string | undefined>> | undefined>();
  const [loadError, setLoadError] = useState<string | undefined>();
  useEffect(() => {
    formValidator(props.type, 'rotate', schema).then(setValidator, () =>
      setLoadError('The form could not be loaded. Reload the page and try again.'),
    );
  }, [props.type, schema]);
  // Fields this connection does not use stay out of the way (the schema is the type's, shared with the backend).
  const uiSchema: UiSchema<Record<string, string | undefined>> = {
    'ui:order': [...shown.map((f) => f.name), '*'],
    ...Object.fromEntries(
      all.map((f) => [
        f.name,
        shown.includes(f)
          ? {
              'ui:widget': 'password',
              'ui:autocomplete': 'new-password',
              ...(f === shown[0] ? { 'ui:autofocus': true } : {}),
              ...(status[f.name]?.hint
                ? {
                    'ui:help': `Current value ends in ${status[f.name]!.hint} (version ${status[f.name]!.version ?? 1}).`,
                  }
                : {}),
            }
          : { 'ui:widget': 'hidden' },
      ]),
    ),
    'ui:submitButtonOptions': { norender: true },
  };
  return (
    <Dialog
      title={`Rotate credentials of ${props.connection.spec.displayName || props.connection.metadata.name}`}
      description="The new value replaces the old one everywhere at once: the gateway and mounted files use it from the next request. Leave a field empty to keep it."
      onClose={props.onClose}
    >
      {props.error ? (
        <div className="callout callout-danger" role="alert">
          {props.error}
        </div>
      ) : null}
      {loadError ? (
        <div className="callout callout-danger" role="alert">
          {loadError}
        </div>
      ) : null}
      {!validator ? (
        <p className="muted" role="status">
          Loading the form…
        </p>
      ) : (
        <Form<Record<string, string | undefined>>
          schema={schema}
          uiSchema={uiSchema}
          formData={values}
          validator={validator}
          idPrefix="rotate"
          noHtml5Validate
          showErrorList={false}
          focusOnFirstError
          customValidate={(data, errors) => {
            const first = shown[0]?.name;
            if (first && !Object.values(data ?? {}).some((v) => typeof v === 'string' && v !== ''))
              errors[first]?.addError('Enter at least one new value.');
            return errors;
          }}
          onChange={(e) => setValues(e.formData ?? {})}
          onSubmit={(e) =>
            props.onSubmit(
              Object.fromEntries(
                Object.entries(e.formData ?? {}).filter(
                  (kv): kv is [string, string] => typeof kv[1] === 'string' && kv[1] !== '',
                ),
              ),
            )
          }
        >
          <div className="form-actions">
            <button type="button" className="button button-secondary" onClick={props.onClose}>
              Cancel
            </button>
            <button type="submit" className="button button-primary" disabled={props.busy}>
              {props.busy ? 'Rotating…' : 'Rotate'}
            </button>
          </div>
        </Form>
      )}
    </Dialog>
  );
}
