import { isForwardablePath } from './upstream-plan.js';

/** A parsed gateway URL. Connection names are DNS labels; nothing else from the URL names a resource. */
export type Route =
  | { kind: 'healthz' }
  | { kind: 'readyz' }
  | { kind: 'catalogue' }
  | { kind: 'proxy'; connection: string; path: string; search: string }
  | { kind: 'credentials'; connection: string; watch: boolean }
  | { kind: 'invalid-path'; connection: string }
  | { kind: 'unknown' };

const CONNECTION_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const PREFIX = '/v1/connections';

/**
 * Parses the raw request target. The proxied path is kept exactly as the
 * caller encoded it (no decoding and re-encoding that could change its
 * meaning upstream), but dot segments and backslashes are refused.
 */
export function parseRoute(rawUrl: string): Route {
  const q = rawUrl.indexOf('?');
  const pathname = q < 0 ? rawUrl : rawUrl.slice(0, q);
  const search = q < 0 ? '' : rawUrl.slice(q);
  if (pathname === '/healthz' || pathname === '/livez') return { kind: 'healthz' };
  if (pathname === '/readyz') return { kind: 'readyz' };
  if (pathname === PREFIX || pathname === `${PREFIX}/`) return { kind: 'catalogue' };
  if (!pathname.startsWith(`${PREFIX}/`)) return { kind: 'unknown' };

  const rest = pathname.slice(PREFIX.length + 1);
  const slash = rest.indexOf('/');
  const connection = slash < 0 ? rest : rest.slice(0, slash);
  if (!CONNECTION_NAME.test(connection)) return { kind: 'unknown' };
  const tail = slash < 0 ? '' : rest.slice(slash);

  if (tail === '/credentials') {
    const watch = new URLSearchParams(search).get('watch');
    return { kind: 'credentials', connection, watch: watch === '1' || watch === 'true' };
  }
  if (tail === '/proxy' || tail.startsWith('/proxy/')) {
    const path = tail.slice('/proxy'.length);
    if (!isForwardablePath(path)) return { kind: 'invalid-path', connection };
    return { kind: 'proxy', connection, path, search };
  }
  return { kind: 'unknown' };
}
