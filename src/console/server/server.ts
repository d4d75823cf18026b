import { readdir } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeError } from '../../runtime/describe-error.js';
import type { Logger } from '../../runtime/logger.js';
import { KubeUpstream } from './kube-upstream.js';
import { allowKubeRequest } from './routes.js';
import { sanitizeResponse } from './sanitize.js';
import { readCookie, SessionStore } from './sessions.js';
import { StaticFiles } from './static-files.js';
import { discoverWorkspaces, whoAmI, type Identity } from './workspaces.js';
import { validatorModule } from './validators.js';
import { FORM_VARIANTS, type FormType, type FormVariant } from '../shared/form-schemas.js';

export interface ConsoleOptions {
  /** Kubernetes API server URL. */
  apiServer: string;
  /** CA bundle for the API server (PEM). */
  caPem?: string;
  host: string;
  port: number;
  tls?: { certPem: string; keyPem: string };
  log: Logger;
  /** Most sessions kept in memory at once (each holds a token); 10 000 by default. */
  maxSessions?: number;
  /** Directory of the built SPA; dist/console/web by default. */
  webRoot?: string;
}

export interface ConsoleServer {
  url: string;
  close(): Promise<void>;
}

const SESSION_COOKIE = 'atoll_session';
/**
 * Over HTTPS the cookie is `__Host-` prefixed: browsers accept it only from
 * this host, Secure, Path=/ and without a Domain, so a page on a sibling
 * subdomain (same site, so SameSite does not help) cannot toss in a session
 * of its own (test/attacks/console-cookie-tossing.test.ts).
 */
const SECURE_SESSION_COOKIE = `__Host-${SESSION_COOKIE}`;
const MAX_BODY_BYTES = 256 * 1024;
const KUBE_PREFIX = '/api/kube';

/**
 * Only our own scripts and styles, no inline code, no eval (form validators
 * are compiled by the backend, see validators.ts), no framing, no other origin.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS: Record<string, string> = {
  'Content-Security-Policy': CONTENT_SECURITY_POLICY,
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Permissions-Policy': 'camera=(), microphone=(), geolocation=(), payment=()',
};

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** `atoll console`: serves the Integrations panel and forwards its allowlisted Kubernetes requests with the person's own token. */
export async function startConsole(opts: ConsoleOptions): Promise<ConsoleServer> {
  const webRoot = opts.webRoot ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'web');
  const assets = await readdir(path.join(webRoot, 'assets')).catch(() => {
    throw new Error(`the console's web app is not built (${webRoot} is missing): run \`npm run build\``);
  });
  const files = await StaticFiles.load(webRoot, ['index.html', ...assets.map((a) => `assets/${a}`)]);
  const upstream = new KubeUpstream(opts.apiServer, opts.caPem);
  const sessions = new SessionStore(undefined, undefined, opts.maxSessions);
  const secure = opts.tls !== undefined;
  const log = opts.log;

  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
    handle(req, res).catch((err: unknown) => {
      const status = err instanceof HttpError ? err.status : 502;
      if (!(err instanceof HttpError))
        log.warn({ error: describeError(err), method: req.method }, 'console request failed');
      sendJson(res, status, {
        kind: 'Status',
        status: 'Failure',
        code: status,
        message:
          err instanceof HttpError
            ? err.message
            : 'The Kubernetes API server could not be reached. Try again in a moment.',
      });
    });
  };

  function isSecureRequest(req: http.IncomingMessage): boolean {
    return secure || req.headers['x-forwarded-proto'] === 'https';
  }

  function sessionCookieName(req: http.IncomingMessage): string {
    return isSecureRequest(req) ? SECURE_SESSION_COOKIE : SESSION_COOKIE;
  }

  function sessionCookie(req: http.IncomingMessage, value: string, maxAgeSeconds: number): string {
    // Plain HTTP (loopback `atoll dev`) cannot use the prefix, which requires Secure.
    const attributes = isSecureRequest(req) ? 'Path=/; Secure' : 'Path=/api';
    return `${sessionCookieName(req)}=${value}; ${attributes}; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}`;
  }

  /** The person's token: the fronting proxy's Authorization header, or the session cookie. */
  function tokenOf(req: http.IncomingMessage): string | undefined {
    const auth = req.headers.authorization;
    if (auth?.startsWith('Bearer ')) return auth.slice('Bearer '.length).trim() || undefined;
    return sessions.token(readCookie(req.headers.cookie, sessionCookieName(req)));
  }

  function requireToken(req: http.IncomingMessage): string {
    const token = tokenOf(req);
    if (!token) throw new HttpError(401, 'You are not signed in.');
    return token;
  }

  /**
   * Cross-site request forgery: writes need a header a form or a cross-origin
   * page cannot send without a CORS preflight we never answer, and, where the
   * browser names an origin, it must be our own.
   */
  function checkSameOrigin(req: http.IncomingMessage): void {
    if (req.method === 'GET' || req.method === 'HEAD') return;
    if (req.headers['x-atoll-console'] !== '1') throw new HttpError(403, 'Requests must come from the console itself.');
    const origin = req.headers.origin;
    if (origin && origin !== 'null') {
      const host = req.headers['x-forwarded-host'] ?? req.headers.host;
      if (!URL.canParse(origin) || new URL(origin).host !== host)
        throw new HttpError(403, 'Requests must come from the console itself.');
    } else if (origin === 'null') throw new HttpError(403, 'Requests must come from the console itself.');
  }

  /** The token in a sign-in body and who the API server says it is (SelfSubjectReview). */
  async function identify(req: http.IncomingMessage): Promise<{ token: string; who: Identity }> {
    const body = parseJson(await readBody(req)) as { token?: unknown };
    const token = typeof body.token === 'string' ? body.token.trim() : '';
    if (!/^[\x21-\x7e]{16,16384}$/.test(token))
      throw new HttpError(
        400,
        'The sign-in token is missing or malformed: paste the whole token, or open the sign-in link again.',
      );
    const who = await whoAmI(upstream, token);
    if (!who)
      throw new HttpError(
        401,
        'The Kubernetes API server did not accept this token: it may have expired. Get a new sign-in link.',
      );
    return { token, who };
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    const pathname = url.split('?')[0]!;
    if (pathname === '/healthz') return sendText(res, 200, 'ok');
    if (!pathname.startsWith('/api/')) return serveStatic(req, res, pathname);
    res.setHeader('Cache-Control', 'no-store');
    checkSameOrigin(req);

    if (pathname === '/api/session/preview') {
      // Whom a sign-in link would sign in as, so the page can ask before it
      // replaces anyone's session (login CSRF): no session, no cookie.
      if (req.method !== 'POST') throw new HttpError(405, 'Method not allowed.');
      const { who } = await identify(req);
      return sendJson(res, 200, { username: who.username });
    }

    if (pathname === '/api/session') {
      if (req.method === 'POST') {
        const { token, who } = await identify(req);
        const session = sessions.create(token, who.username);
        res.setHeader('Set-Cookie', sessionCookie(req, session.id, session.maxAgeSeconds));
        return sendJson(res, 200, { user: who, via: 'session' });
      }
      if (req.method === 'DELETE') {
        sessions.delete(readCookie(req.headers.cookie, sessionCookieName(req)));
        res.setHeader('Set-Cookie', sessionCookie(req, '', 0));
        return sendJson(res, 200, {});
      }
      if (req.method === 'GET') {
        const token = requireToken(req);
        const who = await whoAmI(upstream, token);
        if (!who) throw new HttpError(401, 'Your sign-in has expired. Sign in again.');
        return sendJson(res, 200, { user: who, via: req.headers.authorization ? 'proxy' : 'session' });
      }
      throw new HttpError(405, 'Method not allowed.');
    }

    if (pathname === '/api/workspaces' && req.method === 'GET') {
      const token = requireToken(req);
      const who = await whoAmI(upstream, token);
      if (!who) throw new HttpError(401, 'Your sign-in has expired. Sign in again.');
      const known = (new URLSearchParams(url.split('?')[1] ?? '').get('known') ?? '')
        .split(',')
        .filter(Boolean)
        .slice(0, 20);
      return sendJson(res, 200, { items: await discoverWorkspaces(upstream, token, who, known) });
    }

    const validator = /^\/api\/validators\/([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?)\/(add|edit|rotate)\.js$/.exec(
      pathname,
    );
    if (validator && req.method === 'GET') {
      const token = requireToken(req);
      const answer = await upstream.request(token, 'GET', `/apis/atoll.dev/v1alpha1/integrationtypes/${validator[1]}`);
      if (answer.status !== 200) return sendJson(res, answer.status, sanitizeResponse(answer.body));
      const type = answer.body as FormType & { metadata?: { resourceVersion?: string } };
      const rv = type.metadata?.resourceVersion ?? '';
      const wanted = new URLSearchParams(url.split('?')[1] ?? '').get('rv');
      if (wanted && wanted !== rv)
        throw new HttpError(409, 'This integration type changed since the page loaded. Reload the page.');
      const variant = validator[3] as FormVariant;
      if (!FORM_VARIANTS.includes(variant)) throw new HttpError(404, 'Not found.');
      const body = Buffer.from(validatorModule(validator[1]!, rv, type, variant));
      res.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8', 'Content-Length': body.length });
      res.end(body);
      return;
    }

    if (pathname.startsWith(`${KUBE_PREFIX}/`)) {
      const allowed = allowKubeRequest(req.method ?? 'GET', url.slice(KUBE_PREFIX.length), req.headers['content-type']);
      if (!allowed) throw new HttpError(403, 'The console does not forward this request.');
      const token = requireToken(req);
      const body = req.method === 'GET' || req.method === 'DELETE' ? undefined : await readBody(req);
      const answer = await upstream.request(token, req.method!, allowed.path, body, allowed.contentType);
      log.debug({ method: req.method, path: allowed.path.split('?')[0], status: answer.status }, 'forwarded');
      return sendJson(res, answer.status, sanitizeResponse(answer.body));
    }
    throw new HttpError(404, 'Not found.');
  }

  function serveStatic(req: http.IncomingMessage, res: http.ServerResponse, pathname: string): void {
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendText(res, 405, 'method not allowed');
    const file = files.get(pathname);
    if (!file) return sendText(res, 404, 'not found');
    res.writeHead(200, {
      'Content-Type': file.contentType,
      'Content-Length': file.body.length,
      'Cache-Control': file.immutable ? 'public, max-age=31536000, immutable' : 'no-store',
    });
    res.end(req.method === 'HEAD' ? undefined : file.body);
  }

  const server = opts.tls
    ? https.createServer({ cert: opts.tls.certPem, key: opts.tls.keyPem }, handler)
    : http.createServer(handler);
  server.headersTimeout = 20_000;
  server.requestTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return {
    url: `${secure ? 'https' : 'http'}://${host}:${port}`,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      upstream.close();
    },
  };
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const payload = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': payload.length });
  res.end(payload);
}

function sendText(res: http.ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new HttpError(413, 'The request is too large.'));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function parseJson(buf: Buffer): unknown {
  try {
    return JSON.parse(buf.toString('utf8')) as unknown;
  } catch {
    throw new HttpError(400, 'The request body is not valid JSON.');
  }
}
