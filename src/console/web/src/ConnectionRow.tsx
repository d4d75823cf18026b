import { CATEGORY_LABELS, condition, overall, relativeTime, words } from './format';
import { StatusBadge } from './StatusBadge';
import { TypeIcon } from './TypeIcon';
import type { Connection, IntegrationType } from './types';

function Check({ conn, type, label }: { conn: Connection; type: string; label: string }) {
  const c = condition(conn, type);
  const tone = !c || c.status === 'Unknown' ? 'pending' : c.status === 'True' ? 'ok' : 'fail';
  const text = !c || c.status === 'Unknown' ? 'Not checked yet' : c.status === 'True' ? 'Yes' : words(c.reason) || 'No';
  return (
    <div className={`check check-${tone}`}>
      <dt>{label}</dt>
      <dd>
        <span className="check-icon" aria-hidden="true">
          {tone === 'ok' ? '✓' : tone === 'fail' ? '!' : '…'}
        </span>
        {text}
      </dd>
    </div>
  );
}

/** One connection as a settings panel shows it: identity, health, credential hints, last test, actions. */
export function ConnectionRow(props: {
  conn: Connection;
  type?: IntegrationType;
  canEdit: boolean;
  testing: boolean;
  onTest: () => void;
  onEdit: () => void;
  onRotate: () => void;
  onDelete: () => void;
}) {
  const { conn, type } = props;
  const name = conn.metadata.name;
  const state = overall(conn);
  const ready = condition(conn, 'Ready');
  const probe = conn.status?.lastProbe;
  const credentials = conn.status?.credentials ?? {};
  const fieldLabel = (f: string) => type?.spec.credentialFields?.find((c) => c.name === f)?.displayName ?? f;
  const title = conn.spec.displayName || name;
  const failing = ready?.status === 'False';
  return (
    <li className="connection" data-connection={name} aria-labelledby={`conn-title-${name}`}>
      <div className="connection-main">
        <TypeIcon name={type?.spec.displayName ?? conn.spec.type} category={type?.spec.category} />
        <div className="connection-identity">
          <h2 id={`conn-title-${name}`} className="connection-title">
            {title}
          </h2>
          <p className="connection-subtitle">
            <code>{name}</code>
            <span aria-hidden="true"> · </span>
            {type?.spec.displayName ?? conn.spec.type}
            {type?.spec.category ? (
              <>
                <span aria-hidden="true"> · </span>
                {CATEGORY_LABELS[type.spec.category] ?? type.spec.category}
              </>
            ) : null}
          </p>
        </div>
        <div className="connection-status" aria-live="polite">
          {props.testing ? (
            <StatusBadge tone="progress">Testing…</StatusBadge>
          ) : (
            <StatusBadge tone={state.tone}>{state.label}</StatusBadge>
          )}
        </div>
      </div>
      {failing && ready?.message ? (
        <p className="connection-message" data-testid="ready-message">
          <strong>{words(ready.reason)}:</strong> {ready.message}
        </p>
      ) : null}
      <dl className="connection-facts">
        <Check conn={conn} type="Reachable" label="Reachable" />
        <Check conn={conn} type="Authenticated" label="Authenticated" />
        <div className="fact">
          <dt>Credentials</dt>
          <dd>
            {Object.keys(credentials).length === 0 ? (
              <span className="muted">None stored</span>
            ) : (
              <ul className="hints" role="list">
                {Object.entries(credentials).map(([f, c]) => (
                  <li key={f} data-hint-field={f}>
                    <span className="hint-label">{fieldLabel(f)}</span>{' '}
                    <span className="hint">{`••••${(c.hint ?? '').replace(/^…/, '')}`}</span>{' '}
                    <span className="muted">v{c.version ?? 1}</span>
                  </li>
                ))}
              </ul>
            )}
          </dd>
        </div>
        <div className="fact">
          <dt>Last test</dt>
          <dd>
            {probe?.time ? (
              <>
                <time dateTime={probe.time} title={new Date(probe.time).toLocaleString()}>
                  {relativeTime(probe.time)}
                </time>
                {probe.durationMs !== undefined ? <span className="muted"> · {probe.durationMs} ms</span> : null}
              </>
            ) : (
              <span className="muted">Never</span>
            )}
          </dd>
        </div>
      </dl>
      {props.canEdit ? (
        <div className="connection-actions">
          <button
            type="button"
            className="button button-secondary button-small"
            onClick={props.onTest}
            disabled={props.testing}
            aria-label={`Test connection ${title}`}
          >
            {props.testing ? 'Testing…' : 'Test connection'}
          </button>
          <button
            type="button"
            className="button button-ghost button-small"
            onClick={props.onEdit}
            aria-label={`Edit ${title}`}
          >
            Edit
          </button>
          {type?.spec.credentialFields?.length ? (
            <button
              type="button"
              className="button button-ghost button-small"
              onClick={props.onRotate}
              aria-label={`Rotate credentials of ${title}`}
            >
              Rotate credentials
            </button>
          ) : null}
          <button
            type="button"
            className="button button-ghost button-small button-danger-text"
            onClick={props.onDelete}
            aria-label={`Delete ${title}`}
          >
            Delete
          </button>
        </div>
      ) : null}
    </li>
  );
}
