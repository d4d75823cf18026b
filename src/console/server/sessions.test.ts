import { describe, expect, it } from 'vitest';
import { MAX_SESSIONS_PER_PERSON, readCookie, SessionStore, tokenExpiry } from './sessions.js';

const jwt = (claims: object) => `e30.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.sig`;

describe('SessionStore', () => {
  it('hands out opaque ids, never the token, and ends a session when the token expires', () => {
    let now = 1_000_000;
    const store = new SessionStore(8 * 3600_000, () => now);
    const token = jwt({ exp: (now + 60_000) / 1000 });
    const s = store.create(token, 'alice');
    expect(s.id).not.toContain(token);
    expect(s.id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(s.maxAgeSeconds).toBe(60);
    expect(store.token(s.id)).toBe(token);
    expect(store.token('guess')).toBeUndefined();
    now += 60_000;
    expect(store.token(s.id)).toBeUndefined();
  });

  it('caps a session at its maximum age and forgets it on sign-out', () => {
    let now = 0;
    const store = new SessionStore(1000, () => now);
    const s = store.create('opaque-token-without-expiry', 'alice');
    expect(store.token(s.id)).toBe('opaque-token-without-expiry');
    store.delete(s.id);
    expect(store.token(s.id)).toBeUndefined();
    const t = store.create('opaque-token-without-expiry', 'alice');
    now = 1000;
    expect(store.token(t.id)).toBeUndefined();
  });

  it("a person's sign-ins displace only their own oldest sessions, even at the global cap", () => {
    const store = new SessionStore(8 * 3600_000, Date.now, 20);
    const victim = store.create('victim-token', 'victim');
    const flood = Array.from({ length: 100 }, () => store.create('attacker-token', 'attacker'));
    expect(store.token(victim.id)).toBe('victim-token');
    expect(store.size).toBe(1 + MAX_SESSIONS_PER_PERSON);
    expect(store.token(flood[0]!.id)).toBeUndefined();
    expect(store.token(flood.at(-1)!.id)).toBe('attacker-token');
  });
});

describe('helpers', () => {
  it('reads the exp claim and one cookie', () => {
    expect(tokenExpiry(jwt({ exp: 42 }))).toBe(42_000);
    expect(tokenExpiry('not-a-jwt')).toBeUndefined();
    expect(readCookie('a=1; atoll_session=xyz; b=2', 'atoll_session')).toBe('xyz');
    expect(readCookie('xatoll_session=1', 'atoll_session')).toBeUndefined();
  });
});
