import { request } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCertificate, createCertificateAuthority } from '../kube/x509.js';
import { createLogger } from '../runtime/logger.js';
import { allow } from './admission.js';
import { PATHS } from './registration.js';
import { startWebhookServer } from './server.js';

const serverCA = createCertificateAuthority({ commonName: 'webhook-ca' });
const serving = createCertificate({
  issuer: serverCA,
  commonName: 'localhost',
  dnsNames: ['localhost'],
  ipAddresses: ['127.0.0.1'],
  usage: 'server',
});
const apiserverCA = createCertificateAuthority({ commonName: 'apiserver-webhook-client-ca' });
const apiserver = createCertificate({
  issuer: apiserverCA,
  commonName: 'kube-apiserver-webhook-client',
  usage: 'client',
});

function post(
  port: number,
  client?: { certPem: string; keyPem: string },
): Promise<{ status: number } | { error: string }> {
  const body = JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: { uid: 'u', kind: { group: 'atoll.dev', version: 'v1alpha1', kind: 'Workspace' }, operation: 'CREATE' },
  });
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: PATHS.validateWorkspace,
        method: 'POST',
        ca: serverCA.certPem,
        ...(client ? { cert: client.certPem, key: client.keyPem } : {}),
        headers: { 'Content-Type': 'application/json' },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
      },
    );
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
    req.end(body);
  });
}

describe('webhook server with API-server client authentication', () => {
  let server: Awaited<ReturnType<typeof startWebhookServer>>;
  let answered = 0;

  beforeAll(async () => {
    server = await startWebhookServer({
      host: '127.0.0.1',
      port: 0,
      tls: serving,
      clientAuth: { caPem: apiserverCA.certPem, names: ['kube-apiserver-webhook-client'] },
      handlers: { validateWorkspace: (req) => (answered++, allow(req.uid)) },
      log: createLogger({ level: 'silent' }),
    });
  });
  afterAll(async () => server?.close());

  it("answers the API server's certificate", async () => {
    expect(await post(server.port, apiserver)).toEqual({ status: 200 });
    expect(answered).toBe(1);
  });

  it("refuses, before reading a review, a client without a certificate, with another CA's, or with the CA's under another name", async () => {
    const rogueCA = createCertificateAuthority({ commonName: 'rogue' });
    const rogue = createCertificate({ issuer: rogueCA, commonName: 'kube-apiserver-webhook-client', usage: 'client' });
    const otherName = createCertificate({ issuer: apiserverCA, commonName: 'someone-else', usage: 'client' });
    expect(await post(server.port)).toHaveProperty('error');
    expect(await post(server.port, rogue)).toHaveProperty('error');
    expect(await post(server.port, otherName)).toEqual({ status: 403 });
    expect(answered).toBe(1);
  });
});
