import Form from '@rjsf/core';
import type { RJSFSchema, UiSchema } from '@rjsf/utils';
import validator from '@rjsf/validator-ajv8';
import { useState } from 'react';
import { Dialog } from './Dialog';
import type { Connection, IntegrationType } from './types';

/** Replace one or more credentials of a connection: sealed at admission, version + 1, the old value is never used again. */
export function RotateCredentials(props: { connection: Connection; type: IntegrationType; busy: boolean; error?: string; onSubmit: (values: Record<string, string>) => void; onClose: () => void }) {
  const fields = (props.type.spec.credentialFields ?? []).filter((f) => props.connection.spec.credentials?.[f.name] || f.required);
  const shown = fields.length > 0 ? fields : props.type.spec.credentialFields ?? [];
  const [values, setValues] = useState<Record<string, string | undefined>>({});
  const status = props.connection.status?.credentials ?? {};
  const schema: RJSFSchema = {
    type: 'object',
    properties: Object.fromEntries(shown.map((f) => [f.name, { type: 'string', title: `New ${(f.displayName ?? f.name).toLowerCase()}`, maxLength: 16384, ...(status[f.name]?.hint ? { description: `Current value ends in ${status[f.name]!.hint} (version ${status[f.name]!.version ?? 1}).` } : {}) }])),
  };
  const uiSchema: UiSchema = {
    ...Object.fromEntries(shown.map((f, i) => [f.name, { 'ui:widget': 'password', 'ui:autocomplete': 'new-password', ...(i === 0 ? { 'ui:autofocus': true } : {}) }])),
    'ui:submitButtonOptions': { norender: true },
  };
  return (
    <Dialog title={`Rotate credentials of ${props.connection.spec.displayName || props.connection.metadata.name}`} description="The new value replaces the old one everywhere at once: the gateway and mounted files use it from the next request. Leave a field empty to keep it." onClose={props.onClose}>
      {props.error ? <div className="callout callout-danger" role="alert">{props.error}</div> : null}
      <Form
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
          if (first && !Object.values(data ?? {}).some((v) => typeof v === 'string' && v !== '')) errors[first]?.addError('Enter at least one new value.');
          return errors;
        }}
        onChange={(e) => setValues(e.formData ?? {})}
        onSubmit={(e) => props.onSubmit(Object.fromEntries(Object.entries(e.formData ?? {}).filter((kv): kv is [string, string] => typeof kv[1] === 'string' && kv[1] !== '')))}
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
    </Dialog>
  );
}
