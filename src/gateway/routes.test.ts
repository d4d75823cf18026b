import { describe, expect, it } from 'vitest';
import { parseRoute } from './routes.js';

describe('parseRoute', () => {
  it('parses the catalogue, health and credentials routes', () => {
    expect(parseRoute('/v1/connections')).toEqual({ kind: 'catalogue' });
    expect(parseRoute('/healthz')).toEqual({ kind: 'healthz' });
    expect(parseRoute('/readyz?verbose')).toEqual({ kind: 'readyz' });
    expect(parseRoute('/v1/connections/db/credentials?watch=1')).toEqual({
      kind: 'credentials',
      connection: 'db',
      watch: true,
    });
    expect(parseRoute('/v1/connections/db/credentials')).toEqual({
      kind: 'credentials',
      connection: 'db',
      watch: false,
    });
  });

  it('keeps the proxied path and query exactly as encoded', () => {
    expect(parseRoute('/v1/connections/api/proxy/a%20b/c?x=1&y=%2F')).toEqual({
      kind: 'proxy',
      connection: 'api',
      path: '/a%20b/c',
      search: '?x=1&y=%2F',
    });
    expect(parseRoute('/v1/connections/api/proxy')).toEqual({ kind: 'proxy', connection: 'api', path: '', search: '' });
  });

  it('refuses dot segments, encoded or not, backslashes and encoded slashes', () => {
    for (const path of ['/..', '/a/../b', '/%2e%2E/x', '/.', '/a\\b', '/a%5c..', '/a%2fb', '/%00']) {
      expect(parseRoute(`/v1/connections/api/proxy${path}`)).toEqual({ kind: 'invalid-path', connection: 'api' });
    }
  });

  it('accepts only DNS-label connection names and known sub-routes', () => {
    expect(parseRoute('/v1/connections/Bad_Name/proxy/x').kind).toBe('unknown');
    expect(parseRoute('/v1/connections/../x').kind).toBe('unknown');
    expect(parseRoute('/v1/connections/ns%2Fapi/proxy/x').kind).toBe('unknown');
    expect(parseRoute('/v1/connections/api/secrets').kind).toBe('unknown');
    expect(parseRoute('/v1/connectionsX').kind).toBe('unknown');
    expect(parseRoute('/').kind).toBe('unknown');
  });
});
