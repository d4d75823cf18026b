import { describe, expect, it } from 'vitest';
import { GatewayError } from './errors.js';
import { isForwardablePath, planConnection, planUpstream, requestPlan, upstreamHref } from './upstream-plan.js';

const values = (
  credentials: Record<string, string>,
  settings: Record<string, unknown> = { base: 'https://api.example.com/v2' },
) => ({ settings, credentials });

describe('planUpstream', () => {
  it('appends path and query to the base URL and injects a header credential plus extra headers', () => {
    const plan = planUpstream(
      {
        baseURL: '{{settings.base}}',
        auth: { type: 'header', headerName: 'DD-API-KEY', credential: 'apiKey' },
        headers: { 'DD-APPLICATION-KEY': '{{credentials.appKey}}', 'X-Static': 'yes' },
      },
      values({ apiKey: 'k-123456', appKey: 'app-987654' }),
      '/series/a%20b',
      '?from=1',
    );
    expect(upstreamHref(plan)).toBe('https://api.example.com/v2/series/a%20b?from=1');
    expect(plan.headers).toEqual({ 'dd-api-key': 'k-123456', 'dd-application-key': 'app-987654', 'x-static': 'yes' });
    expect(plan.secrets).toEqual(expect.arrayContaining(['k-123456', 'app-987654']));
  });

  it('drops a header whose optional credential is absent', () => {
    const plan = planUpstream(
      {
        baseURL: 'https://h',
        auth: { type: 'bearer', credential: 'token' },
        headers: { 'X-App': '{{credentials.app}}' },
      },
      values({ token: 'tok-abcdef' }),
      '',
      '',
    );
    expect(plan.headers).toEqual({ authorization: 'Bearer tok-abcdef' });
    expect(upstreamHref(plan)).toBe('https://h/');
  });

  it('basic auth encodes user and password; query auth replaces a caller parameter of the same name', () => {
    const basic = planUpstream(
      { baseURL: 'http://h', auth: { type: 'basic', usernameField: 'username', passwordField: 'password' } },
      values({ username: 'u', password: 'p@ss-word' }),
      '/x',
      '',
    );
    expect(basic.headers.authorization).toBe(`Basic ${Buffer.from('u:p@ss-word').toString('base64')}`);
    const query = planUpstream(
      { baseURL: 'http://h', auth: { type: 'query', queryParam: 'api_key', credential: 'token' } },
      values({ token: 's3cr3t-value' }),
      '/x',
      '?api_key=caller&q=1',
    );
    const url = new URL(upstreamHref(query));
    expect(url.searchParams.getAll('api_key')).toEqual(['s3cr3t-value']);
    expect(url.searchParams.get('q')).toBe('1');
  });

  it('auth type may be a settings template (http-api)', () => {
    const plan = planUpstream(
      {
        baseURL: '{{settings.base}}',
        auth: { type: '{{settings.auth}}', headerName: '{{settings.headerName}}', credential: 'token' },
      },
      values({ token: 'abcdefgh' }, { base: 'http://h', auth: 'header', headerName: 'X-API-Key' }),
      '',
      '',
    );
    expect(plan.headers).toEqual({ 'x-api-key': 'abcdefgh' });
  });

  it('a missing credential or a bad auth type is a 503 without the value in the message', () => {
    const missing = () =>
      planUpstream({ baseURL: 'http://h', auth: { type: 'bearer', credential: 'token' } }, values({}), '', '');
    expect(missing).toThrow(GatewayError);
    expect(() =>
      planUpstream({ baseURL: 'http://h', auth: { type: 'digest' } }, values({ token: 'x' }), '', ''),
    ).toThrow(/do not render/);
    expect(() =>
      planUpstream(
        { baseURL: 'http://h', auth: { type: 'header', headerName: 'Bad Header', credential: 'token' } },
        values({ token: 'abc\n' }),
        '',
        '',
      ),
    ).toThrow(GatewayError);
  });
});

describe('requestPlan', () => {
  /** What the WHATWG URL makes of base + path + query: the reference the string join must equal. */
  function viaURL(base: string, path: string, search: string): string {
    const b = new URL(base);
    const url = new URL(b.href);
    url.pathname = b.pathname.replace(/\/+$/, '') + path;
    const callerQuery = search.startsWith('?') ? search.slice(1) : search;
    url.search = [b.search.slice(1), callerQuery].filter((q) => q !== '').join('&');
    url.hash = '';
    return url.href;
  }

  it('joins path and query exactly as the URL would serialise them, whatever the characters', () => {
    const bases = ['http://h', 'http://h/', 'https://h:8443/v1/', 'http://[::1]:9/p?fixed=1', 'https://h/a#frag'];
    // Every printable ASCII character, a space, a control character and non-ASCII, in paths and queries.
    const chars = [...Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)), '\u0001', 'é', '€'];
    const samples = ['', '?', '??x', '?a=1&b=2', '/', '//x', '/a/b.json'];
    for (const c of chars) samples.push(`/x${c}y`, `?q=${c}`, `/p${c}?v=${c}${c}`);
    for (const base of bases) {
      const target = planConnection({ baseURL: base }, values({}, {}));
      for (const sample of samples) {
        const q = sample.indexOf('?');
        const [path, search] = q < 0 ? [sample, ''] : [sample.slice(0, q), sample.slice(q)];
        if (!isForwardablePath(path)) continue;
        expect(upstreamHref(requestPlan(target, path, search)), `${base} + ${sample}`).toBe(viaURL(base, path, search));
      }
    }
  });
});

describe('isForwardablePath', () => {
  it('accepts ordinary encoded paths and refuses traversal', () => {
    expect(isForwardablePath('')).toBe(true);
    expect(isForwardablePath('/a/b%20c/d.json')).toBe(true);
    expect(isForwardablePath('/a/..')).toBe(false);
    expect(isForwardablePath('/%2E%2e')).toBe(false);
    expect(isForwardablePath('/%zz')).toBe(false);
    // Path parameters: `..;x` is `..` to a servlet container.
    for (const p of ['/..;/admin', '/a/..;x=1/b', '/.;', '/%2e%2e;/a', '/..%3B/a', '/..%3b'])
      expect(isForwardablePath(p), p).toBe(false);
    for (const p of ['/a;b', '/...;/a', '/..a;/b', '/;/x', '/matrix;a=1;b=2/c'])
      expect(isForwardablePath(p), p).toBe(true);
    for (const path of ['/.', '/./a', '/a/./b', '/..', '/a/../b', '.', '..'])
      expect(isForwardablePath(path), path).toBe(false);
    for (const path of ['/.a', '/a..', '/...', '/a.b/c', '/.well-known/x', '/..a/b.'])
      expect(isForwardablePath(path), path).toBe(true);
  });
});
