import type { KubeClient, KubeObject } from '../kube/client.js';
import { isAlreadyExists } from '../kube/errors.js';
import { Secrets } from '../kube/resources.js';
import { certificateExpiresAt, createCertificate, createCertificateAuthority } from '../kube/x509.js';

export interface ServingCertificate {
  caPem: string;
  certPem: string;
  keyPem: string;
}

interface Secret extends KubeObject {
  data?: Record<string, string>;
  type?: string;
}

export const WEBHOOK_TLS_SECRET = 'atoll-webhook-tls';
const RENEW_BEFORE_MS = 30 * 24 * 3600_000;

/**
 * The webhook's serving certificate, self-managed: a CA and leaf kept in a
 * Secret of the operator's namespace so every replica serves the same one,
 * renewed 30 days before expiry or when the wanted names change.
 */
export async function ensureServingCertificate(
  client: KubeClient,
  namespace: string,
  names: { dnsNames: string[]; ipAddresses: string[] },
  // The gateway keeps its own certificate the same way, in its own Secret.
  { secretName = WEBHOOK_TLS_SECRET, caName = 'atoll-webhook-ca' }: { secretName?: string; caName?: string } = {},
): Promise<ServingCertificate> {
  const existing = await client.tryGet<Secret>(Secrets, secretName, namespace);
  const current = existing ? fromSecret(existing) : undefined;
  const wanted = JSON.stringify(names);
  if (
    current &&
    existing?.metadata?.annotations?.['atoll.dev/names'] === wanted &&
    certificateExpiresAt(current.certPem).getTime() - Date.now() > RENEW_BEFORE_MS
  ) {
    return current;
  }
  const ca = createCertificateAuthority({ commonName: caName, validDays: 3650 });
  const leaf = createCertificate({
    issuer: ca,
    commonName: names.dnsNames[0] ?? 'atoll-webhook',
    dnsNames: names.dnsNames,
    ipAddresses: names.ipAddresses,
    usage: 'server',
    validDays: 365,
  });
  const body: Secret = {
    metadata: {
      name: secretName,
      namespace,
      labels: { 'app.kubernetes.io/managed-by': 'atoll' },
      annotations: { 'atoll.dev/names': wanted },
      ...(existing ? { resourceVersion: existing.metadata?.resourceVersion } : {}),
    },
    type: 'kubernetes.io/tls',
    data: { 'ca.crt': b64(ca.certPem), 'tls.crt': b64(leaf.certPem), 'tls.key': b64(leaf.keyPem) },
  };
  try {
    if (existing) await client.replace(Secrets, body);
    else await client.create(Secrets, body);
  } catch (err) {
    // Another replica won the race: use its certificate.
    if (!isAlreadyExists(err) && (err as { status?: number }).status !== 409) throw err;
    const winner = await client.get<Secret>(Secrets, secretName, namespace);
    return fromSecret(winner)!;
  }
  return { caPem: ca.certPem, certPem: leaf.certPem, keyPem: leaf.keyPem };
}

/** cert-manager mode: wait for the Secret cert-manager issues; never write it. */
export async function readServingCertificate(
  client: KubeClient,
  namespace: string,
  timeoutMs = 120_000,
): Promise<ServingCertificate> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await client.tryGet<Secret>(Secrets, WEBHOOK_TLS_SECRET, namespace);
    const cert = s ? fromSecret(s) : undefined;
    if (cert) return cert;
    if (Date.now() > deadline)
      throw new Error(
        `Secret ${namespace}/${WEBHOOK_TLS_SECRET} from cert-manager did not appear; check the Certificate resource`,
      );
    await new Promise((r) => setTimeout(r, 2000));
  }
}

function fromSecret(s: Secret): ServingCertificate | undefined {
  const d = s.data ?? {};
  if (!d['ca.crt'] || !d['tls.crt'] || !d['tls.key']) return undefined;
  return { caPem: unb64(d['ca.crt']), certPem: unb64(d['tls.crt']), keyPem: unb64(d['tls.key']) };
}

const b64 = (s: string) => Buffer.from(s).toString('base64');
const unb64 = (s: string) => Buffer.from(s, 'base64').toString('utf8');
