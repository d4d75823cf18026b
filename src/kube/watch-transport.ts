import http2 from 'node:http2';
import type https from 'node:https';
import type { Readable } from 'node:stream';

/** At most this many watch streams share one connection (API servers allow more; this leaves headroom). */
const STREAMS_PER_SESSION = 100;
const IDLE_CLOSE_MS = 30_000;

interface PooledSession {
  session: http2.ClientHttp2Session;
  streams: number;
  idle?: NodeJS.Timeout;
}

export interface OpenedStream {
  status: number;
  body: Readable;
}

/**
 * Watch streams over HTTP/2, as client-go does: the operator keeps one
 * Secret watch per workspace namespace (it has no cluster-wide Secret
 * access), and HTTP/2 multiplexes them over a few connections instead of one
 * TCP connection each.
 */
export class Http2WatchTransport {
  private readonly pool: PooledSession[] = [];

  constructor(private readonly origin: string) {}

  async open(path: string, auth: https.RequestOptions, headers: Record<string, string>, signal?: AbortSignal): Promise<OpenedStream> {
    const pooled = this.acquire(auth);
    const stream = pooled.session.request(
      { ':method': 'GET', ':path': path, ...normalize(auth.headers), ...headers },
      signal ? { signal } : {},
    );
    stream.once('close', () => this.release(pooled));
    return new Promise((resolve, reject) => {
      stream.once('response', (h) => resolve({ status: Number(h[':status'] ?? 0), body: stream }));
      stream.once('error', reject);
    });
  }

  close(): void {
    for (const p of this.pool.splice(0)) {
      clearTimeout(p.idle);
      p.session.close();
    }
  }

  private acquire(auth: https.RequestOptions): PooledSession {
    let pooled = this.pool.find((p) => !p.session.closed && !p.session.destroyed && p.streams < STREAMS_PER_SESSION);
    if (!pooled) {
      const session = http2.connect(this.origin, {
        ca: auth.ca,
        cert: auth.cert,
        key: auth.key,
        rejectUnauthorized: auth.rejectUnauthorized ?? true,
        ...(auth.servername ? { servername: auth.servername } : {}),
      });
      session.unref(); // an idle watch connection must not keep a process alive
      const entry: PooledSession = { session, streams: 0 };
      const drop = () => {
        const i = this.pool.indexOf(entry);
        if (i >= 0) this.pool.splice(i, 1);
        clearTimeout(entry.idle);
      };
      session.on('close', drop);
      session.on('goaway', drop);
      session.on('error', drop);
      this.pool.push(entry);
      pooled = entry;
    }
    pooled.streams++;
    clearTimeout(pooled.idle);
    return pooled;
  }

  private release(pooled: PooledSession): void {
    pooled.streams--;
    if (pooled.streams > 0) return;
    pooled.idle = setTimeout(() => {
      if (pooled.streams === 0) pooled.session.close();
    }, IDLE_CLOSE_MS);
    pooled.idle.unref();
  }
}

function normalize(headers: https.RequestOptions['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers ?? {})) if (v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : String(v);
  return out;
}
