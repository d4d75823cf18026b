import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { AddConnection } from './AddConnection';
import { api, ApiError, FIELD_MANAGER, paths } from './api';
import { ConnectionForm, type ConnectionFormValues } from './ConnectionForm';
import { ConnectionRow } from './ConnectionRow';
import { Dialog } from './Dialog';
import { words } from './format';
import { PlusIcon } from './Icons';
import { RotateCredentials } from './RotateCredentials';
import type { Connection, IntegrationType, Workspace } from './types';

type DialogState = { kind: 'add' } | { kind: 'edit' | 'rotate' | 'delete'; name: string } | undefined;
interface PendingTest {
  requestedAt: string;
  previous?: string;
}

const TEST_ANNOTATION = 'atoll.dev/test-requested-at';
const WRITE = `?fieldManager=${FIELD_MANAGER}&fieldValidation=Strict`;

/** New credential values for a create: plaintext goes to the API server once, sealed at admission. */
function credentialValues(values: Record<string, string | undefined> | undefined) {
  const out: Record<string, { value: string }> = {};
  for (const [k, v] of Object.entries(values ?? {})) if (typeof v === 'string' && v !== '') out[k] = { value: v };
  return out;
}

/** A merge patch replacing credentials: `value` in, the previous source (sealed or secretKeyRef) out. */
function credentialPatch(values: Record<string, string | undefined> | undefined) {
  const out: Record<string, { value: string; sealed: null; secretKeyRef: null }> = {};
  for (const [k, v] of Object.entries(values ?? {}))
    if (typeof v === 'string' && v !== '') out[k] = { value: v, sealed: null, secretKeyRef: null };
  return out;
}

/** The Integrations page of one workspace. */
export function Integrations({
  workspace,
  onNotice,
}: {
  workspace: Workspace;
  onNotice: (text: string, tone?: 'success' | 'danger') => void;
}) {
  const ns = workspace.namespace;
  const [connections, setConnections] = useState<Connection[] | undefined>();
  const [types, setTypes] = useState<IntegrationType[]>([]);
  const [loadError, setLoadError] = useState<string | undefined>();
  const [dialog, setDialog] = useState<DialogState>();
  const [busy, setBusy] = useState(false);
  const [dialogError, setDialogError] = useState<string | undefined>();
  const [pending, setPending] = useState<Record<string, PendingTest>>({});
  const pendingRef = useRef(pending);
  useEffect(() => {
    pendingRef.current = pending;
  }, [pending]);

  const typeByName = useMemo(() => new Map(types.map((t) => [t.metadata.name, t])), [types]);

  const refresh = useCallback(async () => {
    try {
      const list = await api<{ items: Connection[] }>('GET', paths.connections(ns));
      const items = list.items.sort((a, b) =>
        (a.spec.displayName || a.metadata.name).localeCompare(b.spec.displayName || b.metadata.name),
      );
      setConnections(items);
      setLoadError(undefined);
      // Finish tests whose probe has reported since the request.
      const done = Object.entries(pendingRef.current).filter(([name, p]) => {
        const probe = items.find((c) => c.metadata.name === name)?.status?.lastProbe?.time;
        return (
          !items.some((c) => c.metadata.name === name) ||
          (probe !== undefined && probe !== p.previous && Date.parse(probe) >= Date.parse(p.requestedAt) - 1000)
        );
      });
      if (done.length > 0) {
        setPending((cur) => {
          const next = { ...cur };
          for (const [name] of done) delete next[name];
          return next;
        });
        for (const [name] of done) {
          const c = items.find((x) => x.metadata.name === name);
          const ready = c?.status?.conditions?.find((x) => x.type === 'Ready');
          if (!c) continue;
          const title = c.spec.displayName || name;
          if (ready?.status === 'True')
            onNotice(`${title}: connection test succeeded in ${c.status?.lastProbe?.durationMs ?? 0} ms.`, 'success');
          else
            onNotice(
              `${title}: ${words(ready?.reason) || 'test failed'}. ${c.status?.lastProbe?.message ?? ''}`.trim(),
              'danger',
            );
        }
      }
    } catch (err) {
      setLoadError((err as Error).message);
    }
  }, [ns, onNotice]);

  // A workspace change remounts this component (App keys it by namespace), so state starts afresh.
  useEffect(() => {
    // eslint-disable-next-line react-hooks/set-state-in-effect -- refresh sets state only once its request has answered
    void refresh();
    api<{ items: IntegrationType[] }>('GET', paths.types())
      .then((l) => setTypes(l.items.sort((a, b) => a.spec.displayName.localeCompare(b.spec.displayName))))
      .catch((err: Error) => setLoadError(err.message));
  }, [ns, refresh]);

  // Live status: poll fast while a test is running, calmly otherwise, and not at all in a hidden tab.
  const fast = Object.keys(pending).length > 0;
  useEffect(() => {
    const id = setInterval(
      () => {
        if (document.visibilityState === 'visible') void refresh();
      },
      fast ? 1000 : 4000,
    );
    return () => clearInterval(id);
  }, [fast, refresh]);

  const close = () => {
    setDialog(undefined);
    setDialogError(undefined);
    setBusy(false);
  };

  async function run(action: () => Promise<void>) {
    setBusy(true);
    setDialogError(undefined);
    try {
      await action();
      close();
      await refresh();
    } catch (err) {
      setDialogError(err instanceof ApiError ? err.message : 'Something went wrong. Try again.');
      setBusy(false);
    }
  }

  async function test(conn: Connection) {
    const requestedAt = new Date().toISOString();
    setPending((cur) => ({
      ...cur,
      [conn.metadata.name]: {
        requestedAt,
        ...(conn.status?.lastProbe?.time ? { previous: conn.status.lastProbe.time } : {}),
      },
    }));
    try {
      await api(
        'PATCH',
        paths.connection(ns, conn.metadata.name) + WRITE,
        { metadata: { annotations: { [TEST_ANNOTATION]: requestedAt } } },
        'application/merge-patch+json',
      );
    } catch (err) {
      setPending((cur) => {
        const next = { ...cur };
        delete next[conn.metadata.name];
        return next;
      });
      onNotice((err as Error).message, 'danger');
    }
  }

  const current =
    dialog && dialog.kind !== 'add' ? connections?.find((c) => c.metadata.name === dialog.name) : undefined;
  const currentType = current ? typeByName.get(current.spec.type) : undefined;

  return (
    <section className="page" aria-labelledby="page-title">
      <header className="page-header">
        <div>
          <h1 id="page-title">Integrations</h1>
          <p className="page-lead">
            Connect the external services this workspace uses. Credentials are stored encrypted and never shown again;
            workloads use them by connection name.
          </p>
        </div>
        {workspace.canEdit ? (
          <button
            type="button"
            className="button button-primary"
            onClick={() => setDialog({ kind: 'add' })}
            disabled={types.length === 0}
          >
            <PlusIcon />
            Add connection
          </button>
        ) : (
          <span className="chip chip-readonly" role="note">
            View only
          </span>
        )}
      </header>
      {!workspace.canEdit ? (
        <div className="callout callout-info">
          You can view this workspace's connections. Ask a workspace admin for the editor role to add, test or change
          them.
        </div>
      ) : null}
      {loadError ? (
        <div className="callout callout-danger" role="alert">
          {loadError}
        </div>
      ) : null}
      {connections === undefined ? (
        <p className="muted" role="status">
          Loading connections…
        </p>
      ) : connections.length === 0 ? (
        <div className="empty">
          <h2>No connections yet</h2>
          <p className="muted">
            {workspace.canEdit
              ? 'Add a connection to give this workspace access to a monitoring service, a database, an HTTP API and more.'
              : 'Nobody has added a connection to this workspace yet.'}
          </p>
          {workspace.canEdit ? (
            <button type="button" className="button button-primary" onClick={() => setDialog({ kind: 'add' })}>
              Add your first connection
            </button>
          ) : null}
        </div>
      ) : (
        <ul className="connections" role="list" aria-label="Connections">
          {connections.map((c) => (
            <ConnectionRow
              key={c.metadata.name}
              conn={c}
              type={typeByName.get(c.spec.type)}
              canEdit={workspace.canEdit}
              testing={pending[c.metadata.name] !== undefined}
              onTest={() => void test(c)}
              onEdit={() => setDialog({ kind: 'edit', name: c.metadata.name })}
              onRotate={() => setDialog({ kind: 'rotate', name: c.metadata.name })}
              onDelete={() => setDialog({ kind: 'delete', name: c.metadata.name })}
            />
          ))}
        </ul>
      )}

      {dialog?.kind === 'add' ? (
        <AddConnection
          types={types}
          takenNames={connections?.map((c) => c.metadata.name) ?? []}
          busy={busy}
          {...(dialogError ? { error: dialogError } : {})}
          onClose={close}
          onSubmit={(type, v: ConnectionFormValues) =>
            void run(async () => {
              const credentials = credentialValues(v.credentials);
              await api('POST', paths.connections(ns) + WRITE, {
                apiVersion: 'atoll.dev/v1alpha1',
                kind: 'ExternalConnection',
                metadata: { name: v.name, namespace: ns },
                spec: {
                  type: type.metadata.name,
                  ...(v.displayName ? { displayName: v.displayName } : {}),
                  settings: v.settings ?? {},
                  ...(Object.keys(credentials).length ? { credentials } : {}),
                },
              });
              onNotice(`${v.displayName || v.name} added. Testing the connection…`, 'success');
              setPending((cur) => ({ ...cur, [v.name!]: { requestedAt: new Date(Date.now() - 2000).toISOString() } }));
            })
          }
        />
      ) : null}

      {dialog?.kind === 'edit' && current && currentType ? (
        <Dialog
          title={`Edit ${current.spec.displayName || current.metadata.name}`}
          description={<span>Type: {currentType.spec.displayName}. The connection name and type cannot change.</span>}
          onClose={close}
          wide
        >
          {dialogError ? (
            <div className="callout callout-danger" role="alert">
              {dialogError}
            </div>
          ) : null}
          <ConnectionForm
            type={currentType}
            existing={current}
            submitLabel="Save changes"
            busy={busy}
            onCancel={close}
            onSubmit={(v) =>
              void run(async () => {
                const removed = Object.fromEntries(
                  Object.keys(current.spec.settings ?? {})
                    .filter((k) => !(v.settings && k in v.settings))
                    .map((k) => [k, null]),
                );
                const credentials = credentialPatch(v.credentials);
                await api(
                  'PATCH',
                  paths.connection(ns, current.metadata.name) + WRITE,
                  {
                    metadata: { resourceVersion: current.metadata.resourceVersion },
                    spec: {
                      displayName: v.displayName || null,
                      settings: { ...removed, ...(v.settings ?? {}) },
                      ...(Object.keys(credentials).length ? { credentials } : {}),
                    },
                  },
                  'application/merge-patch+json',
                );
                onNotice(`${v.displayName || current.metadata.name} saved.`, 'success');
              })
            }
          />
        </Dialog>
      ) : null}

      {dialog?.kind === 'rotate' && current && currentType ? (
        <RotateCredentials
          connection={current}
          type={currentType}
          busy={busy}
          {...(dialogError ? { error: dialogError } : {})}
          onClose={close}
          onSubmit={(values) =>
            void run(async () => {
              await api(
                'PATCH',
                paths.connection(ns, current.metadata.name) + WRITE,
                { spec: { credentials: credentialPatch(values) } },
                'application/merge-patch+json',
              );
              onNotice(
                `${Object.keys(values).join(', ')} of ${current.spec.displayName || current.metadata.name} replaced. The new value is in use now.`,
                'success',
              );
            })
          }
        />
      ) : null}

      {dialog?.kind === 'delete' && current ? (
        <Dialog title={`Delete ${current.spec.displayName || current.metadata.name}?`} onClose={close}>
          {dialogError ? (
            <div className="callout callout-danger" role="alert">
              {dialogError}
            </div>
          ) : null}
          <p>
            Workloads that use <code>{current.metadata.name}</code> lose access to the service at once, and its stored
            credentials are destroyed. This cannot be undone.
          </p>
          <div className="form-actions">
            <button type="button" className="button button-secondary" onClick={close} autoFocus>
              Cancel
            </button>
            <button
              type="button"
              className="button button-danger"
              disabled={busy}
              onClick={() =>
                void run(async () => {
                  await api('DELETE', paths.connection(ns, current.metadata.name));
                  onNotice(`${current.spec.displayName || current.metadata.name} deleted.`, 'success');
                })
              }
            >
              {busy ? 'Deleting…' : 'Delete connection'}
            </button>
          </div>
        </Dialog>
      ) : null}
    </section>
  );
}
