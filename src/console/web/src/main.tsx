import { StrictMode, useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { api, ApiError } from './api';
import { App } from './App';
import type { User } from './types';
import './styles.css';

/**
 * Sign-in: a link carries the token in the URL fragment, which the browser
 * never sends to any server. It is posted once to /api/session (which keeps
 * it server-side behind an HttpOnly, SameSite=Strict cookie) and removed
 * from the address bar and history at once. Behind an OIDC proxy the
 * proxy's Authorization header signs the person in and no token is handled here.
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

function SignIn({ message, onSignedIn }: { message?: string; onSignedIn: (u: User) => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState(message);
  const [busy, setBusy] = useState(false);
  return (
    <main className="signin">
      <div className="signin-card">
        <div className="brand">
          <span className="brand-mark" aria-hidden="true">a</span>
          <span className="brand-name">atoll</span>
        </div>
        <h1>Sign in to Integrations</h1>
        <p className="muted">Use the sign-in link you were given, or paste a Kubernetes token (an OIDC ID token, or <code>kubectl create token</code> for a ServiceAccount). The console acts only with your own permissions.</p>
        {error ? <div className="callout callout-danger" role="alert">{error}</div> : null}
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
            <input type="password" value={token} onChange={(e) => setToken(e.target.value)} autoComplete="off" required />
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
  useEffect(() => {
    const start = fragment.token ? api<{ user: User }>('POST', '/api/session', { token: fragment.token }) : api<{ user: User }>('GET', '/api/session');
    delete fragment.token;
    start
      .then((r) => setUser(r.user))
      .catch((err: unknown) => {
        if (err instanceof ApiError && err.status !== 401) setMessage(err.message);
        else if (err instanceof ApiError && fragment.workspace) setMessage(err.message);
        setUser(null);
      });
  }, []);
  if (user === undefined) return <p className="muted boot" role="status">Loading…</p>;
  if (user === null) return <SignIn {...(message ? { message } : {})} onSignedIn={setUser} />;
  return (
    <App
      user={user}
      {...(fragment.workspace ? { initialWorkspace: fragment.workspace } : {})}
      onSignOut={() => {
        void api('DELETE', '/api/session').finally(() => {
          setUser(null);
          setMessage(undefined);
        });
      }}
    />
  );
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <Root />
  </StrictMode>,
);
