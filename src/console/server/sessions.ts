import { randomBytes } from 'node:crypto';

/** Default cap on sessions kept in memory (`atoll console --max-sessions`). */
export const MAX_SESSIONS = 10_000;
/** Enough for a person's browsers and devices; more sign-ins replace that person's own oldest session. */
export const MAX_SESSIONS_PER_PERSON = 16;

/**
 * Signed-in people, kept in memory: the browser holds only an opaque session
 * id in an HttpOnly, SameSite=Strict cookie, never the token itself (which
 * would not fit a cookie for larger OIDC ID tokens anyway). A restart signs
 * everyone out; behind an OIDC proxy no session is needed at all, the
 * proxy's Authorization header is used on every request.
 */
export class SessionStore {
  private readonly sessions = new Map<string, { token: string; owner: string; expiresAt: number }>();

  constructor(
    private readonly maxAgeMs: number = 8 * 3600_000,
    private readonly now: () => number = Date.now,
    private readonly maxSessions: number = MAX_SESSIONS,
  ) {}

  /** `owner`: who the API server says the token belongs to (the SelfSubjectReview username). */
  create(token: string, owner: string): { id: string; maxAgeSeconds: number } {
    this.sweep();
    // Bounded: only valid tokens get a session, but a flood of sign-ins must not grow memory without end.
    // A person's sign-ins displace only their own older sessions: evicting the globally oldest would let
    // anyone with a valid token sign everyone else out (test/attacks/console-session-flood.test.ts).
    const own = [...this.sessions].filter(([, s]) => s.owner === owner).map(([id]) => id);
    for (const id of own.slice(0, Math.max(0, own.length - MAX_SESSIONS_PER_PERSON + 1))) this.sessions.delete(id);
    if (this.sessions.size >= this.maxSessions) this.sessions.delete(this.sessions.keys().next().value!);
    const id = randomBytes(32).toString('base64url');
    const expiresAt = Math.min(this.now() + this.maxAgeMs, tokenExpiry(token) ?? Infinity);
    this.sessions.set(id, { token, owner, expiresAt });
    return { id, maxAgeSeconds: Math.max(0, Math.floor((expiresAt - this.now()) / 1000)) };
  }

  token(id: string | undefined): string | undefined {
    if (!id) return undefined;
    const s = this.sessions.get(id);
    if (!s) return undefined;
    if (s.expiresAt <= this.now()) {
      this.sessions.delete(id);
      return undefined;
    }
    return s.token;
  }

  delete(id: string | undefined): void {
    if (id) this.sessions.delete(id);
  }

  get size(): number {
    return this.sessions.size;
  }

  private sweep(): void {
    const now = this.now();
    for (const [id, s] of this.sessions) if (s.expiresAt <= now) this.sessions.delete(id);
  }
}

/** The `exp` of a JWT (unverified: only used to end a session early, the API server verifies). */
export function tokenExpiry(token: string): number | undefined {
  const payload = token.split('.')[1];
  if (!payload) return undefined;
  try {
    const exp = (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { exp?: unknown }).exp;
    return typeof exp === 'number' ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/** Reads one cookie from a Cookie header. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
