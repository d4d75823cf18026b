import http2 from 'node:http2';
import type https from 'node:https';
import type { Readable } from 'node:stream';

/** At most this many watch streams share one connection (API servers allow more; this leaves headroom). */
const STREAMS_PER_SESSION = 100;
const IDLE_CLOSE_MS = 30_000;
/**
 * client-go's HTTP/2 health check (k8s.io/apimachinery's transport): a PING
 * after 30 s and a dead connection if it is not answered in 15 s. We PING on
 * a fixed interval, which costs a few bytes per connection and also covers a
 * session that is busy sending on streams the peer no longer reads.
 */
export const PING_INTERVAL_MS = 30_000;
export const PING_TIMEOUT_MS = 15_000;

export interface Http2TransportOptions {
  pingIntervalMs?: number;
  pingTimeoutMs?: number;
}

interface PooledSession {
  session: http2.ClientHttp2Session;
  streams: number;
  openedAt: number;
  idle?: NodeJS.Timeout;
  pinger?: NodeJS.Timeout;
  pingDeadline?: NodeJS.Timeout;
}

export interface OpenedStream {
  status: number;
  /** `retry-after` response header, if any. */
  retryAfter?: string;
  body: Readable;
}

/**
 * The reason a watchdog aborts a stream it judged stalled. A stall says the
 * connection under it is suspect, not just the stream, so the transport
 * destroys the whole session: the next watch then dials a new connection
 * instead of queueing behind the same dead one.
 */
export class StalledStreamError extends Error {
  override readonly name = 'StalledStreamError';
  constructor() {
    super('watch stream stalled');
  }
}

/**
 * Watch streams over HTTP/2, as client-go does: the operator keeps one
 * Secret watch per workspace namespace (it has no cluster-wide Secret
 * access), and HTTP/2 multiplexes them over a few connections instead of one
 * TCP connection each. A half-open connection (the peer gone without a FIN
 * or RST) never errors by itself, so every session is PINGed and destroyed
 * when a PING goes unanswered.
 */
export class Http2WatchTransport {
  private readonly pool: PooledSession[] = [];
  private readonly pingIntervalMs: number;
  private readonly pingTimeoutMs: number;

  constructor(
    private readonly origin: string,
    opts: Http2TransportOptions = {},
  ) {
    this.pingIntervalMs = opts.pingIntervalMs ?? PING_INTERVAL_MS;
    this.pingTimeoutMs = opts.pingTimeoutMs ?? PING_TIMEOUT_MS;
  }

  async open(
    path: string,
    auth: https.RequestOptions,
    headers: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<OpenedStream> {
    const pooled = this.acquire(auth);
    const stream = pooled.session.request(
      { ':method': 'GET', ':path': path, ...normalize(auth.headers), ...headers },
      signal ? { signal } : {},
    );
    const onAbort = () => {
      if (signal?.reason instanceof StalledStreamError) pooled.session.destroy(signal.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    stream.once('close', () => {
      signal?.removeEventListener('abort', onAbort);
      this.release(pooled);
    });
    return new Promise((resolve, reject) => {
      stream.once('response', (h: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader) => {
        const retryAfter: string | string[] | undefined = h['retry-after'];
        resolve({
          status: Number(h[':status'] ?? 0),
          retryAfter: typeof retryAfter === 'string' ? retryAfter : retryAfter?.[0],
          body: stream,
        });
      });
      stream.once('error', reject);
      // A stream closed before any response (session destroyed) would otherwise leave this pending.
      stream.once('close', () => reject(new Error('HTTP/2 stream closed before a response')));
    });
  }

  /** Live sessions, for tests and diagnostics. */
  get sessions(): number {
    return this.pool.length;
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
      const entry: PooledSession = { session, streams: 0, openedAt: Date.now() };
      const drop = () => {
        const i = this.pool.indexOf(entry);
        if (i >= 0) this.pool.splice(i, 1);
        clearTimeout(entry.idle);
        clearInterval(entry.pinger);
        clearTimeout(entry.pingDeadline);
      };
      session.on('close', drop);
      session.on('goaway', drop);
      session.on('error', drop);
      entry.pinger = setInterval(() => this.ping(entry), this.pingIntervalMs);
      entry.pinger.unref();
      this.pool.push(entry);
      pooled = entry;
    }
    pooled.streams++;
    clearTimeout(pooled.idle);
    return pooled;
  }

  /** One PING at a time; no acknowledgement within the timeout means the peer is gone. */
  private ping(entry: PooledSession): void {
    const { session } = entry;
    if (session.destroyed || session.closed || entry.pingDeadline) return;
    if (session.connecting) {
      // A handshake that never completes (TCP accepted, nothing answered) is as dead as an unanswered PING.
      if (Date.now() - entry.openedAt > this.pingTimeoutMs)
        session.destroy(new Error('HTTP/2 connection not established in time'));
      return;
    }
    entry.pingDeadline = setTimeout(
      () => session.destroy(new Error('HTTP/2 PING not acknowledged')),
      this.pingTimeoutMs,
    );
    entry.pingDeadline.unref();
    const sent = session.ping((err) => {
      clearTimeout(entry.pingDeadline);
      entry.pingDeadline = undefined;
      if (err && !session.destroyed) session.destroy(err);
    });
    if (!sent) {
      clearTimeout(entry.pingDeadline);
      entry.pingDeadline = undefined;
    }
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
  for (const [k, v] of Object.entries(headers ?? {}))
    if (v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : String(v);
  return out;
}
