import { useCallback, useEffect, useState } from 'react';
import { api } from './api';
import { PlugIcon } from './Icons';
import { Integrations } from './Integrations';
import type { User, Workspace } from './types';

const KNOWN_KEY = 'atoll.console.knownWorkspaces';
const LAST_KEY = 'atoll.console.workspace';

/** Workspace names (never anything secret) the person opened, for people who may not list namespaces. */
function knownWorkspaces(): string[] {
  try {
    const v = JSON.parse(localStorage.getItem(KNOWN_KEY) ?? '[]') as unknown;
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string').slice(0, 20) : [];
  } catch {
    return [];
  }
}

function remember(name: string) {
  localStorage.setItem(KNOWN_KEY, JSON.stringify([name, ...knownWorkspaces().filter((n) => n !== name)].slice(0, 20)));
  localStorage.setItem(LAST_KEY, name);
}

interface Notice {
  id: number;
  text: string;
  tone: 'success' | 'danger';
}

export function App({
  user,
  initialWorkspace,
  onSignOut,
}: {
  user: User;
  initialWorkspace?: string;
  onSignOut: () => void;
}) {
  const [workspaces, setWorkspaces] = useState<Workspace[] | undefined>();
  const [selected, setSelected] = useState<string | undefined>(
    initialWorkspace ?? localStorage.getItem(LAST_KEY) ?? undefined,
  );
  const [error, setError] = useState<string | undefined>();
  const [openName, setOpenName] = useState('');
  const [openError, setOpenError] = useState<string | undefined>();
  const [notices, setNotices] = useState<Notice[]>([]);

  const onNotice = useCallback((text: string, tone: 'success' | 'danger' = 'success') => {
    const id = Date.now() + Math.random();
    setNotices((n) => [...n.slice(-2), { id, text, tone }]);
    setTimeout(() => setNotices((n) => n.filter((x) => x.id !== id)), tone === 'danger' ? 12_000 : 6_000);
  }, []);

  const discover = useCallback(
    async (extra?: string) => {
      const known = [
        ...new Set([...(extra ? [extra] : []), ...(initialWorkspace ? [initialWorkspace] : []), ...knownWorkspaces()]),
      ];
      const res = await api<{ items: Workspace[] }>(
        'GET',
        `/api/workspaces?known=${encodeURIComponent(known.join(','))}`,
      );
      setWorkspaces(res.items);
      return res.items;
    },
    [initialWorkspace],
  );

  useEffect(() => {
    // eslint-disable-next-line react-hooks/set-state-in-effect -- discover sets state only once its request has answered
    discover().catch((err: Error) => setError(err.message));
  }, [discover]);

  const active = workspaces?.find((w) => w.namespace === selected) ?? workspaces?.[0];
  useEffect(() => {
    if (active) remember(active.namespace);
  }, [active]);

  async function openWorkspace(e: React.FormEvent) {
    e.preventDefault();
    const name = openName.trim();
    setOpenError(undefined);
    const found = (await discover(name)).find((w) => w.namespace === name);
    if (!found) {
      setOpenError(`You have no access to a workspace named “${name}”.`);
      return;
    }
    setSelected(name);
    setOpenName('');
  }

  return (
    <div className="shell">
      <aside className="sidebar" aria-label="Workspace">
        <div className="brand">
          <span className="brand-mark" aria-hidden="true">
            a
          </span>
          <span className="brand-name">atoll</span>
        </div>
        {workspaces && workspaces.length > 0 ? (
          <label className="field workspace-switcher">
            <span className="field-label">Workspace</span>
            <select value={active?.namespace} onChange={(e) => setSelected(e.target.value)}>
              {workspaces.map((w) => (
                <option key={w.namespace} value={w.namespace}>
                  {w.displayName ? `${w.displayName} (${w.namespace})` : w.namespace}
                </option>
              ))}
            </select>
          </label>
        ) : null}
        <nav aria-label="Settings">
          <p className="nav-heading">Settings</p>
          <ul role="list">
            <li>
              <a className="nav-link nav-link-active" href="/" aria-current="page">
                <PlugIcon />
                Integrations
              </a>
            </li>
          </ul>
        </nav>
        <form className="open-workspace" onSubmit={(e) => void openWorkspace(e)}>
          <label className="field">
            <span className="field-label">Open another workspace</span>
            <span className="inline-input">
              <input
                value={openName}
                onChange={(e) => setOpenName(e.target.value)}
                placeholder="namespace"
                autoComplete="off"
                spellCheck={false}
                aria-describedby={openError ? 'open-error' : undefined}
              />
              <button type="submit" className="button button-secondary button-small" disabled={!openName.trim()}>
                Open
              </button>
            </span>
          </label>
          {openError ? (
            <p id="open-error" className="field-error" role="alert">
              {openError}
            </p>
          ) : null}
        </form>
        <div className="user">
          <span className="avatar" aria-hidden="true">
            {(user.username.split(':').pop() ?? '?')[0]?.toUpperCase()}
          </span>
          <span className="user-name" title={user.username}>
            {user.username.replace(/^system:serviceaccount:/, '')}
          </span>
          <button type="button" className="button button-ghost button-small" onClick={onSignOut}>
            Sign out
          </button>
        </div>
      </aside>
      <main className="content" id="main">
        {error ? (
          <div className="callout callout-danger" role="alert">
            {error}
          </div>
        ) : null}
        {workspaces === undefined && !error ? (
          <p className="muted" role="status">
            Finding your workspaces…
          </p>
        ) : null}
        {workspaces && workspaces.length === 0 ? (
          <div className="empty">
            <h1>No workspace yet</h1>
            <p className="muted">
              You are signed in as {user.username}, but you are not a member of any workspace this console can find. If
              you know its name, open it from the sidebar, or ask a platform engineer to add you to a Workspace.
            </p>
          </div>
        ) : null}
        {active ? <Integrations key={active.namespace} workspace={active} onNotice={onNotice} /> : null}
      </main>
      <div className="toasts" aria-live="polite" role="status">
        {notices.map((n) => (
          <div key={n.id} className={`toast toast-${n.tone}`}>
            {n.text}
          </div>
        ))}
      </div>
    </div>
  );
}
