import { describe, expect, it } from 'vitest';
import { bearerToken, callerFromTokenReview, parseServiceAccountUsername, unverifiedExpiry } from './caller.js';
import { GatewayError } from './errors.js';

const sa = (username: string, audiences = ['atoll-gateway']) => ({
  authenticated: true,
  audiences,
  user: {
    username,
    uid: 'u-1',
    groups: ['system:serviceaccounts', 'system:authenticated'],
    extra: { 'authentication.kubernetes.io/pod-name': ['p'] },
  },
});

function status(result: unknown): number | undefined {
  return result instanceof GatewayError ? result.status : undefined;
}

describe('callerFromTokenReview', () => {
  it('accepts a ServiceAccount token for atoll-gateway and takes the namespace from the username', () => {
    const caller = callerFromTokenReview(sa('system:serviceaccount:acme:worker'));
    expect(caller).toEqual({
      username: 'system:serviceaccount:acme:worker',
      uid: 'u-1',
      groups: ['system:serviceaccounts', 'system:authenticated'],
      extra: { 'authentication.kubernetes.io/pod-name': ['p'] },
      namespace: 'acme',
      serviceAccount: 'worker',
    });
  });

  it('answers 401 when unauthenticated or minted for another audience', () => {
    expect(status(callerFromTokenReview(undefined))).toBe(401);
    expect(status(callerFromTokenReview({ authenticated: false, error: 'expired' }))).toBe(401);
    expect(
      status(callerFromTokenReview(sa('system:serviceaccount:acme:worker', ['https://kubernetes.default.svc']))),
    ).toBe(401);
    expect(status(callerFromTokenReview({ ...sa('system:serviceaccount:acme:worker'), audiences: undefined }))).toBe(
      401,
    );
  });

  it('answers 403 for people, nodes and malformed service account names', () => {
    for (const username of [
      'alice',
      'system:admin',
      'system:node:n1',
      'system:serviceaccount:acme',
      'system:serviceaccount:acme:w:x',
      'system:serviceaccount:ACME:w',
      'system:serviceaccounts:acme',
    ]) {
      expect(status(callerFromTokenReview(sa(username)))).toBe(403);
    }
  });
});

describe('parseServiceAccountUsername', () => {
  it('splits a well-formed username', () => {
    expect(parseServiceAccountUsername('system:serviceaccount:team-a:app.v2')).toEqual({
      namespace: 'team-a',
      name: 'app.v2',
    });
  });
});

describe('bearerToken', () => {
  it('extracts only well-formed bearer tokens', () => {
    expect(bearerToken('Bearer abc.def-ghi_jkl')).toBe('abc.def-ghi_jkl');
    expect(bearerToken('bearer abc')).toBe('abc');
    expect(bearerToken('Basic abc')).toBeUndefined();
    expect(bearerToken('Bearer a b')).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
    expect(bearerToken(`Bearer ${'a'.repeat(20_000)}`)).toBeUndefined();
  });
});

describe('unverifiedExpiry', () => {
  it('reads exp from a JWT payload and tolerates garbage', () => {
    const payload = Buffer.from(JSON.stringify({ exp: 1700000000 })).toString('base64url');
    expect(unverifiedExpiry(`h.${payload}.s`)).toBe(1700000000);
    expect(unverifiedExpiry('not-a-jwt')).toBeUndefined();
    expect(unverifiedExpiry('a.!!!.b')).toBeUndefined();
  });
});
