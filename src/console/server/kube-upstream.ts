import https from 'node:https';
import http from 'node:http';

/** One answer from the API server, body parsed when it is JSON. */
export interface UpstreamResponse {
  status: number;
  body: unknown;
}

const MAX_RESPONSE_BYTES = 8 * 1024 * 1024;
const TIMEOUT_MS = 30_000;

/**
 * Sends requests to the Kubernetes API server with the signed-in person's
 * bearer token and nothing else of the incoming request: no cookies, no
 * Impersonate-* or other headers, so the API server authenticates and
 * authorizes exactly that person. The console has no credentials of its own.
 */
export class KubeUpstream {
  private readonly server: URL;
  private readonly agent: http.Agent;

  constructor(server: string, caPem?: string) {
    this.server = new URL(server);
    this.agent =
      this.server.protocol === 'https:'
        ? new https.Agent({ keepAlive: true, maxSockets: 32, ...(caPem ? { ca: caPem } : {}) })
        : new http.Agent({ keepAlive: true, maxSockets: 32 });
  }

  request(token: string, method: string, path: string, body?: Buffer, contentType?: string): Promise<UpstreamResponse> {
    const lib = this.server.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = lib.request(
        {
          agent: this.agent,
          protocol: this.server.protocol,
          hostname: this.server.hostname,
          port: this.server.port,
          method,
          path: this.server.pathname.replace(/\/$/, '') + path,
          headers: {
            Authorization: `Bearer ${token}`,
            Accept: 'application/json',
            'User-Agent': 'atoll-console/0.1',
            ...(body ? { 'Content-Type': contentType ?? 'application/json', 'Content-Length': body.length } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > MAX_RESPONSE_BYTES) res.destroy(new Error('response from the API server is too large'));
            else chunks.push(c);
          });
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown;
            try {
              parsed = text ? JSON.parse(text) : {};
            } catch {
              parsed = {
                kind: 'Status',
                status: 'Failure',
                code: res.statusCode,
                message: `The Kubernetes API answered HTTP ${res.statusCode} without a JSON body.`,
              };
            }
            resolve({ status: res.statusCode ?? 502, body: parsed });
          });
        },
      );
      req.setTimeout(TIMEOUT_MS, () => req.destroy(new Error('the API server did not answer in time')));
      req.on('error', reject);
      if (body) req.write(body);
      req.end();
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
