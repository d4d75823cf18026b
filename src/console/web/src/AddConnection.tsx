import { useMemo, useState } from 'react';
import { ConnectionForm, type ConnectionFormValues } from './ConnectionForm';
import { Dialog } from './Dialog';
import { CATEGORY_LABELS } from './format';
import { TypeIcon } from './TypeIcon';
import type { IntegrationType } from './types';

/** "Add connection": pick a type from the catalogue, then fill in its form. */
export function AddConnection(props: {
  types: IntegrationType[];
  takenNames: string[];
  busy: boolean;
  error?: string;
  onSubmit: (type: IntegrationType, values: ConnectionFormValues) => void;
  onClose: () => void;
}) {
  const [chosen, setChosen] = useState<IntegrationType | undefined>();
  const [query, setQuery] = useState('');
  const groups = useMemo(() => {
    const q = query.trim().toLowerCase();
    const matching = props.types.filter(
      (t) =>
        !q ||
        `${t.spec.displayName} ${t.metadata.name} ${t.spec.category ?? ''} ${t.spec.description ?? ''}`
          .toLowerCase()
          .includes(q),
    );
    const byCategory = new Map<string, IntegrationType[]>();
    for (const t of matching)
      byCategory.set(t.spec.category ?? 'other', [...(byCategory.get(t.spec.category ?? 'other') ?? []), t]);
    return [...byCategory.entries()].sort(([a], [b]) =>
      (CATEGORY_LABELS[a] ?? a).localeCompare(CATEGORY_LABELS[b] ?? b),
    );
  }, [props.types, query]);

  if (!chosen) {
    return (
      <Dialog
        title="Add a connection"
        description="Choose the service to connect. You can add several connections of the same type."
        onClose={props.onClose}
        wide
      >
        <label className="search">
          <span className="visually-hidden">Search integrations</span>
          <input
            type="search"
            placeholder="Search integrations"
            value={query}
            onChange={(e) => setQuery(e.target.value)}
            autoFocus
          />
        </label>
        {groups.length === 0 ? <p className="muted">No integration matches “{query}”.</p> : null}
        {groups.map(([category, types]) => (
          <section key={category} className="catalogue-group" aria-labelledby={`cat-${category}`}>
            <h3 id={`cat-${category}`} className="catalogue-heading">
              {CATEGORY_LABELS[category] ?? category}
            </h3>
            <ul className="catalogue" role="list">
              {types.map((t) => (
                <li key={t.metadata.name}>
                  <button
                    type="button"
                    className="catalogue-item"
                    onClick={() => setChosen(t)}
                    aria-describedby={`desc-${t.metadata.name}`}
                  >
                    <TypeIcon name={t.spec.displayName} category={t.spec.category} />
                    <span className="catalogue-text">
                      <span className="catalogue-name">{t.spec.displayName}</span>
                      <span className="catalogue-description" id={`desc-${t.metadata.name}`}>
                        {t.spec.description ?? t.metadata.name}
                      </span>
                    </span>
                  </button>
                </li>
              ))}
            </ul>
          </section>
        ))}
      </Dialog>
    );
  }
  return (
    <Dialog
      title={`Connect ${chosen.spec.displayName}`}
      description={
        <div className="type-summary">
          <TypeIcon name={chosen.spec.displayName} category={chosen.spec.category} size="lg" />
          <div>
            <p>{chosen.spec.description}</p>
            <p className="type-meta">
              <span className="chip">{CATEGORY_LABELS[chosen.spec.category ?? 'other'] ?? chosen.spec.category}</span>
              {chosen.spec.documentationURL ? (
                <a href={chosen.spec.documentationURL} target="_blank" rel="noreferrer noopener">
                  Documentation<span className="visually-hidden"> (opens in a new tab)</span>
                </a>
              ) : null}
              <button type="button" className="link-button" onClick={() => setChosen(undefined)}>
                Choose another type
              </button>
            </p>
          </div>
        </div>
      }
      onClose={props.onClose}
      wide
    >
      {props.error ? (
        <div className="callout callout-danger" role="alert">
          {props.error}
        </div>
      ) : null}
      <ConnectionForm
        type={chosen}
        takenNames={props.takenNames}
        submitLabel="Add connection"
        busy={props.busy}
        onSubmit={(v) => props.onSubmit(chosen, v)}
        onCancel={props.onClose}
      />
    </Dialog>
  );
}
