import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Logger } from '../runtime/logger.js';
import { describeError } from '../runtime/describe-error.js';
import { deny, type AdmissionRequest, type AdmissionResponse } from './admission.js';
import { PATHS } from './registration.js';

export type AdmissionHandler = (req: AdmissionRequest) => Promise<AdmissionResponse> | AdmissionResponse;

const MAX_BODY = 3 * 1024 * 1024;

/**
 * Serves AdmissionReview v1 over TLS. The request log carries only the
 * operation, kind, namespace, name and verdict: admission requests carry
 * plaintext credentials on their way to being sealed.
 */
export async function startWebhookServer(opts: {
  host: string;
  port: number;
  tls: { certPem: string; keyPem: string };
  /** API-server authentication: only clients with a certificate from this CA (and, if given, one of these common names) get an answer. */
  clientAuth?: ClientAuth;
  handlers: Partial<Record<keyof typeof PATHS, AdmissionHandler>>;
  log: Logger;
}): Promise<{ port: number; close(): Promise<void>; setCertificate(tls: { certPem: string; keyPem: string }): void }> {
  const byPath = new Map<string, AdmissionHandler>();
  for (const [name, handler] of Object.entries(opts.handlers)) byPath.set(PATHS[name as keyof typeof PATHS], handler);
  const clientTls = opts.clientAuth ? { requestCert: true, rejectUnauthorized: true, ca: opts.clientAuth.caPem } : {};
  const server = https.createServer(
    { cert: opts.tls.certPem, key: opts.tls.keyPem, minVersion: 'TLSv1.2', ...clientTls },
    (req, res) => {
      if (opts.clientAuth && !allowedClient(req.socket as TLSSocket, opts.clientAuth)) {
        opts.log.warn(
          { remote: req.socket.remoteAddress },
          'admission request from a client certificate not allowed to send reviews',
        );
        res.writeHead(403).end();
        return;
      }
      const handler = byPath.get((req.url ?? '').split('?')[0]!);
      if (!handler || req.method !== 'POST') {
        res.writeHead(404).end();
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY) req.destroy();
        else chunks.push(c);
      });
      const answer = async (): Promise<void> => {
        let review: { apiVersion?: string; request?: AdmissionRequest };
        try {
          review = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof review;
        } catch {
          res.writeHead(400).end();
          return;
        }
        const request = review.request;
        if (!request?.uid) {
          res.writeHead(400).end();
          return;
        }
        let response: AdmissionResponse;
        try {
          response = await handler(request);
        } catch (err) {
          opts.log.error({ error: describeError(err), kind: request.kind?.kind }, 'admission handler failed');
          response = deny(
            request.uid,
            'atoll admission failed internally; nothing was stored, try again',
            500,
            'InternalError',
          );
        }
        opts.log.info(
          {
            operation: request.operation,
            kind: request.kind?.kind,
            namespace: request.namespace,
            name: request.name,
            dryRun: request.dryRun,
            allowed: response.allowed,
            patched: Boolean(response.patch),
          },
          'admission',
        );
        const body = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response });
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(body);
      };
      // A failure after the handler (a closed socket, say) must not become an unhandled rejection.
      req.on('end', () => {
        answer().catch((err: unknown) => {
          opts.log.error({ error: describeError(err) }, 'admission response failed');
          res.destroy();
        });
      });
    },
  );
  // A refused handshake (no or foreign client certificate) is expected noise, not an error.
  server.on('tlsClientError', () => undefined);
  // The API server keeps idle connections to a webhook for up to 90 s and does not retry a POST whose
  // connection the webhook closed under it ("connection reset by peer", the create fails): outlive its idle timeout.
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 125_000;
  await new Promise<void>((resolve) => server.listen(opts.port, opts.host, resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
    setCertificate: (tls) =>
      server.setSecureContext({
        cert: tls.certPem,
        key: tls.keyPem,
        ...(opts.clientAuth ? { ca: opts.clientAuth.caPem } : {}),
      }),
  };
}

export interface ClientAuth {
  caPem: string;
  /** Accepted certificate common names; empty accepts any certificate the CA issued. */
  names: readonly string[];
}

/** The TLS layer already verified the chain; a shared CA (one that also signs users) is narrowed by name. */
function allowedClient(socket: TLSSocket, auth: ClientAuth): boolean {
  if (!socket.authorized) return false;
  if (auth.names.length === 0) return true;
  const cn = socket.getPeerCertificate().subject?.CN;
  return typeof cn === 'string' && auth.names.includes(cn);
}
