import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface HealthChecks {
  /** Process is alive and its loops are turning. */
  live(): boolean;
  /** Caches are synced and the API server is answering. */
  ready(): boolean;
}

/** Serves /healthz, /readyz and /metrics on one plain-HTTP port. */
export async function startHealthServer(opts: {
  host: string;
  port: number;
  checks: HealthChecks;
  registry: Registry;
}): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz' || path === '/livez') return reply(res, opts.checks.live());
    if (path === '/readyz') return reply(res, opts.checks.ready());
    if (path === '/metrics') {
      opts.registry.metrics().then(
        (text) => res.writeHead(200, { 'Content-Type': opts.registry.contentType }).end(text),
        () => res.writeHead(500).end(),
      );
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(opts.port, opts.host, resolve));
  const addr = server.address() as AddressInfo;
  return {
    url: `http://${addr.address.includes(':') ? `[${addr.address}]` : addr.address}:${addr.port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function reply(res: http.ServerResponse, ok: boolean): void {
  res.writeHead(ok ? 200 : 503, { 'Content-Type': 'text/plain' });
  res.end(ok ? 'ok' : 'not ready');
}
