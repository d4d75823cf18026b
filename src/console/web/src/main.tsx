import { StrictMode, useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { api, ApiError } from './api';
import { App } from './App';
import { Dialog } from './Dialog';
import type { User } from './types';
import './styles.css';

/**
 * Sign-in: a link carries the token in the URL fragment, which the browser
 * never sends to any server; it is removed from the address bar and history
 * at once. A link can come from anyone, so it never signs in by itself: the
 * backend says whom it would sign in as (/api/session/preview, no session
 * made) and the person confirms before /api/session replaces their own
 * session (login CSRF, test/attacks/console-signin-link.test.ts). Behind an
 * OIDC proxy the proxy's Authorization header signs the person in and no
 * token is handled here.
 */
function takeFragment(): { token?: string; workspace?: string } {
  const hash = window.location.hash.replace(/^#/, '');
  if (!hash) return {};
  const params = new URLSearchParams(hash);
  history.replaceState(null, '', window.location.pathname + window.location.search);
  const token = params.get('token') ?? undefined;
  const workspace = params.get('workspace') ?? undefined;
  return { ...(token ? { token } : {}), ...(workspace ? { workspace } : {}) };
}

const fragment = takeFragment();

/** A link followed while the page is open changes only the fragment: no reload, so it is read here. */
function onLinkFollowed(handle: (f: { token?: string; workspace?: string }) => void): () => void {
  const listener = () => handle(takeFragment());
  window.addEventListener('hashchange', listener);
  return () => window.removeEventListener('hashchange', listener);
}

/** A sign-in link waiting for the person's answer. */
type PendingLink = { token: string; username: string; workspace?: string } | { error: string };

function ConfirmLink({
  link,
  current,
  busy,
  onContinue,
  onCancel,
}: {
  link: PendingLink;
  current?: User;
  busy: boolean;
  onContinue: () => void;
  onCancel: () => void;
}) {
  if ('error' in link) {
    return (
      <Dialog title="This sign-in link did not work" onClose={onCancel}>
        <div className="callout callout-danger" role="alert">
          {link.error}
        </div>
        <div className="form-actions">
          <button type="button" className="button button-primary" onClick={onCancel}>
            Close
          </button>
        </div>
      </Dialog>
    );
  }
  return (
    <Dialog title="Sign in with this link?" onClose={onCancel}>
      <p data-testid="link-user">
        This link signs you in as <strong>{link.username}</strong>.
      </p>
      {current ? (
        <p data-testid="current-user">
          You are signed in as <strong>{current.username}</strong>. Continue only if you expected to switch.
        </p>
      ) : null}
      <p className="muted">
        Continue only if you asked for this link. A link from someone else can sign you in to their workspace, where
        what you enter is theirs to read.
      </p>
      <div className="form-actions">
        <button type="button" className="button button-secondary" onClick={onCancel}>
          Cancel
        </button>
        <button type="button" className="button button-primary" onClick={onContinue} disabled={busy}>
          {busy ? 'Signing in…' : 'Continue'}
        </button>
      </div>
    </Dialog>
  );
}

function SignIn({ message, onSignedIn }: { message?: string; onSignedIn: (u: User) => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState(message);
  const [busy, setBusy] = useState(false);
  return (
    <main className="signin">
      <div className="signin-card">
        <div className="brand">
          <span className="brand-mark" aria-hidden="true">
            a
          </span>
          <span className="brand-name">atoll</span>
        </div>
        <h1>Sign in to Integrations</h1>
        <p className="muted">
          Use the sign-in link you were given, or paste a Kubernetes token (an OIDC ID token, or{' '}
          <code>kubectl create token</code> for a ServiceAccount). The console acts only with your own permissions.
        </p>
        {error ? (
          <div className="callout callout-danger" role="alert">
            {error}
          </div>
        ) : null}
        <form
          onSubmit={(e) => {
            e.preventDefault();
            setBusy(true);
            api<{ user: User }>('POST', '/api/session', { token: token.trim() })
              .then((r) => {
                setToken('');
                onSignedIn(r.user);
              })
              .catch((err: Error) => setError(err.message))
              .finally(() => setBusy(false));
          }}
        >
          <label className="field">
            <span className="field-label">Token</span>
            <input
              type="password"
              value={token}
              onChange={(e) => setToken(e.target.value)}
              autoComplete="off"
              required
            />
          </label>
          <button type="submit" className="button button-primary button-block" disabled={busy || !token.trim()}>
            {busy ? 'Signing in…' : 'Sign in'}
          </button>
        </form>
      </div>
    </main>
  );
}

function Root() {
  const [user, setUser] = useState<User | null | undefined>();
  const [message, setMessage] = useState<string | undefined>();
  const [link, setLink] = useState<PendingLink | undefined>();
  const [busy, setBusy] = useState(false);
  // The workspace a link names is used only once the person accepts the link.
  const [workspace, setWorkspace] = useState<string | undefined>(fragment.token ? undefined : fragment.workspace);
  const [generation, setGeneration] = useState(0);
  useEffect(() => {
    const token = fragment.token;
    delete fragment.token;
    api<{ user: User }>('GET', '/api/session')
      .then((r) => setUser(r.user))
      .catch((err: unknown) => {
        if (err instanceof ApiError && err.status !== 401) setMessage(err.message);
        setUser(null);
      });
    const preview = (f: { token?: string; workspace?: string }) => {
      if (!f.token) return;
      const linkToken = f.token;
      api<{ username: string }>('POST', '/api/session/preview', { token: linkToken })
        .then((r) =>
          setLink({ token: linkToken, username: r.username, ...(f.workspace ? { workspace: f.workspace } : {}) }),
        )
        .catch((err: Error) => setLink({ error: err.message }));
    };
    preview({ ...(token ? { token } : {}), ...(fragment.workspace ? { workspace: fragment.workspace } : {}) });
    return onLinkFollowed(preview);
  }, []);

  const accept = (pending: PendingLink) => {
    if ('error' in pending) return;
    setBusy(true);
    api<{ user: User }>('POST', '/api/session', { token: pending.token })
      .then((r) => {
        setWorkspace(pending.workspace);
        setGeneration((g) => g + 1);
        setUser(r.user);
        setLink(undefined);
      })
      .catch((err: Error) => setLink({ error: err.message }))
      .finally(() => setBusy(false));
  };
  const confirm =
    link && user !== undefined ? (
      <ConfirmLink
        link={link}
        {...(user ? { current: user } : {})}
        busy={busy}
        onContinue={() => accept(link)}
        onCancel={() => setLink(undefined)}
      />
    ) : null;

  if (user === undefined)
    return (
      <p className="muted boot" role="status">
        Loading…
      </p>
    );
  if (user === null) {
    return (
      <>
        <SignIn
          {...(message ? { message } : {})}
          onSignedIn={(u) => {
            setGeneration((g) => g + 1);
            setUser(u);
          }}
        />
        {confirm}
      </>
    );
  }
  return (
    <>
      <App
        key={generation}
        user={user}
        {...(workspace ? { initialWorkspace: workspace } : {})}
        onSignOut={() => {
          void api('DELETE', '/api/session').finally(() => {
            setUser(null);
            setMessage(undefined);
          });
        }}
      />
      {confirm}
    </>
  );
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <Root />
  </StrictMode>,
);
