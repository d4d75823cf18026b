import { describe, expect, it } from 'vitest';
import { isForwardablePath, planConnection, requestPlan, upstreamHref } from './upstream-plan.js';

/**
 * Red-team checks of the string join (ADR 0030): whatever a caller puts in
 * the path and query, the request target stays under the connection's base
 * path, the origin (scheme, host, port, userinfo) is the base URL's, and the
 * bytes sent are exactly what the WHATWG URL would have produced.
 */
const values = { settings: {}, credentials: {} };
const BASES = ['http://h', 'https://api.example.com/v1/', 'http://h:8080/a/b?fixed=1', 'http://[::1]:9/p'];

/** What the WHATWG URL makes of base + path + query (the pre-ADR-0030 code). */
function viaURL(base: string, path: string, search: string): string {
  const b = new URL(base);
  const url = new URL(b.href);
  url.pathname = b.pathname.replace(/\/+$/, '') + (path === '' ? '' : path.startsWith('/') ? path : `/${path}`);
  const callerQuery = search.startsWith('?') ? search.slice(1) : search;
  url.search = [b.search.slice(1), callerQuery].filter((q) => q !== '').join('&');
  url.hash = '';
  return `${url.origin}${url.pathname}${url.search}`;
}

/** Splits a raw gateway tail as parseRoute does: path up to the first `?`, query from it. */
function split(raw: string): [string, string] {
  const q = raw.indexOf('?');
  return q < 0 ? [raw, ''] : [raw.slice(0, q), raw.slice(q)];
}

function expectContained(base: string, raw: string): void {
  const [path, search] = split(raw);
  if (!isForwardablePath(path)) return;
  const target = planConnection({ baseURL: base }, values);
  const plan = requestPlan(target, path, search);
  const b = new URL(base);
  const basePath = b.pathname.replace(/\/+$/, '');
  // Same origin, a target the request line can carry, still under the base path.
  expect(plan.destination.origin, raw).toBe(b.origin);
  expect(plan.destination.host, raw).toBe(b.host);
  expect(plan.path, raw).toMatch(/^\/[\x21-\x7e]*$/);
  expect(plan.path === basePath || /^[/?]/.test(plan.path.slice(basePath.length)), raw).toBe(true);
  expect(plan.path.startsWith(basePath), raw).toBe(true);
  expect(new URL(upstreamHref(plan)).origin, raw).toBe(b.origin);
  expect(upstreamHref(plan), raw).toBe(viaURL(base, path, search));
}

describe('requestPlan string join under attack', () => {
  it('keeps host, port, userinfo and base path for escape attempts', () => {
    const attacks = [
      '//evil.example',
      '//evil.example/x',
      '/@evil.example',
      '@evil.example',
      '/..',
      '/../x',
      '/%2e%2e/x',
      '/%2E./x',
      '/.%2e',
      '/%2f%2e%2e',
      '/a\\..\\b',
      '\\\\evil',
      '/a#frag/../..',
      '/a?x=1#/../..',
      '/a\tb',
      '/a\nHost: evil',
      '/a\r\nX: y',
      '/é/€',
      '/a?b?c=../..',
      '/a?%0d%0aX-Injected:%201',
      '/a?q=\u0000',
      'http://evil.example/x',
      ':8081/x',
      '/:@evil:1',
      '/a b HTTP/1.1',
      '?',
      '??',
      '?#',
      '/a;/..;/b',
      `/${'a/'.repeat(20_000)}`,
      `/x?${'q=1&'.repeat(20_000)}`,
    ];
    for (const base of BASES) for (const raw of attacks) expectContained(base, raw);
  });

  it('equals the URL serialisation for random combinations of every character class', () => {
    // A fixed-seed generator: the run is reproducible, no flakiness.
    let seed = 0x2f6b_1c3d;
    const next = (): number => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) / 2 ** 32;
    };
    const alphabet = [
      ...Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)),
      '%2e',
      '%2E',
      '%2f',
      '%00',
      '%',
      '\t',
      '\u007f',
      'é',
      '\ud800',
      '//',
      '..',
      '/..',
      '?',
    ];
    for (let n = 0; n < 4_000; n++) {
      const length = 1 + Math.floor(next() * 10);
      let raw = next() < 0.7 ? '/' : '';
      for (let i = 0; i < length; i++) raw += alphabet[Math.floor(next() * alphabet.length)];
      expectContained(BASES[n % BASES.length]!, raw);
    }
  });
});
