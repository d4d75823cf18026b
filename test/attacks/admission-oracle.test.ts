import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { ExternalConnection } from '../../src/api/v1alpha1/index.js';
import type { KubeObject } from '../../src/kube/client.js';
import { ExternalConnections, MutatingWebhookConfigurations, Secrets } from '../../src/kube/resources.js';
import { createCertificate, createCertificateAuthority } from '../../src/kube/x509.js';
import { MUTATING_WEBHOOK } from '../../src/webhooks/registration.js';
import {
  admin,
  condition,
  createWorkspace,
  devPki,
  eventually,
  kubectl,
  randomSecret,
  uniqueName,
  userClient,
  userCertificate,
  userKubeconfig,
} from '../support/cluster.js';

/**
 * Attack (issue 9): the mutating webhook used to compare a new `value` with
 * the stored ciphertext and keep that ciphertext when they matched. Whoever
 * could send it an AdmissionReview (anyone who reaches its port, or an
 * editor through a server-side dry run) learned whether a guess was right.
 * Now admission never decrypts, and the webhook answers only kube-apiserver.
 */

type Conn = ExternalConnection & KubeObject;
type Secret = KubeObject & { data?: Record<string, string> };

const SETTINGS = { baseURL: 'https://api.example.com', auth: 'bearer' };

interface Webhook {
  url: URL;
  caPem: string;
}

interface Tls {
  certPem: string;
  keyPem: string;
}

/** POSTs an AdmissionReview to the webhook as a forger would; resolves with the answer or the transport error. */
function postReview(
  hook: Webhook,
  review: unknown,
  client?: Tls,
): Promise<{ status: number; body: string } | { error: string }> {
  const payload = Buffer.from(JSON.stringify(review));
  return new Promise((resolve) => {
    const req = httpsRequest(
      hook.url,
      {
        method: 'POST',
        ca: hook.caPem,
        ...(client ? { cert: client.certPem, key: client.keyPem } : {}),
        headers: { 'Content-Type': 'application/json', 'Content-Length': payload.length },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', (err) => resolve({ error: err.message }));
      },
    );
    req.on('error', (err) => resolve({ error: (err as NodeJS.ErrnoException).code ?? err.message }));
    req.end(payload);
  });
}

function forgedUpdate(ns: string, name: string, victimSealed: string, guess: string) {
  const old = {
    apiVersion: 'atoll.dev/v1alpha1',
    kind: 'ExternalConnection',
    metadata: { name, namespace: ns },
    spec: { type: 'http-api', settings: SETTINGS, credentials: { token: { sealed: victimSealed } } },
  };
  const object = { ...old, spec: { ...old.spec, credentials: { token: { value: guess, sealed: victimSealed } } } };
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'forged',
      kind: { group: 'atoll.dev', version: 'v1alpha1', kind: 'ExternalConnection' },
      operation: 'UPDATE',
      namespace: ns,
      name,
      object,
      oldObject: old,
    },
  };
}

/** The answer with every sealed value replaced by a placeholder, so answers can be compared; and the sealed values. */
function normalise(body: string): { shape: unknown; sealed: string[] } {
  const review = JSON.parse(body) as { response: { patch?: string } & Record<string, unknown> };
  const ops = review.response.patch
    ? (JSON.parse(Buffer.from(review.response.patch, 'base64').toString()) as Array<{
        path: string;
        value?: { sealed?: string };
      }>)
    : [];
  const sealed = ops.map((o) => o.value?.sealed).filter((s): s is string => typeof s === 'string');
  // The actor stamp carries the time of the request: equal answers differ there and nowhere else.
  const untimed = (v: unknown): unknown =>
    JSON.parse(JSON.stringify(v ?? null).replace(/\\"at\\":\\"[^\\]*\\"/g, '\\"at\\":\\"<time>\\"'));
  const shape = {
    ...review.response,
    patch: ops.map((o) => ({ ...o, value: o.value?.sealed ? { sealed: '<sealed>' } : untimed(o.value) })),
  };
  return { shape, sealed };
}

describe('attack: the admission webhook as a guess oracle', () => {
  const victim = uniqueName('oracle-victim');
  const secret = randomSecret('victim');
  let stored: Conn;
  let hook: Webhook;

  beforeAll(async () => {
    await createWorkspace(victim, { members: [{ kind: 'Group', name: `${victim}-editors`, role: 'editor' }] });
    await admin().create(ExternalConnections, {
      metadata: { name: 'billing', namespace: victim },
      spec: {
        type: 'http-api',
        settings: SETTINGS,
        credentials: { token: { value: secret } },
        probe: { interval: '0' },
      },
    } as never);
    stored = await eventually(
      'victim sealed',
      () => admin().get<Conn>(ExternalConnections, 'billing', victim),
      (c) => condition(c, 'CredentialsSealed')?.status === 'True',
    );
    const config = await admin().get<
      KubeObject & { webhooks: Array<{ name: string; clientConfig: { url: string; caBundle: string } }> }
    >(MutatingWebhookConfigurations, MUTATING_WEBHOOK);
    const seal = config.webhooks.find((w) => w.name === 'seal.externalconnections.atoll.dev')!;
    hook = { url: new URL(seal.clientConfig.url), caPem: Buffer.from(seal.clientConfig.caBundle, 'base64').toString() };
  });

  it('refuses a forged review at the TLS handshake: no client certificate, or one the API server does not hold', async () => {
    const victimSealed = stored.spec.credentials!.token!.sealed!;
    const anonymous = await postReview(hook, forgedUpdate(victim, 'billing', victimSealed, secret));
    expect(anonymous).toHaveProperty('error');
    // A tenant's own client certificate (issued by the cluster CA for kubectl) is not the webhook's client CA.
    const tenant = userCertificate('someone', [`${victim}-editors`]);
    const asTenant = await postReview(hook, forgedUpdate(victim, 'billing', victimSealed, secret), tenant);
    expect(asTenant).toHaveProperty('error');
    // Nor is a certificate minted by another CA with the API server's name.
    const rogueCA = createCertificateAuthority({ commonName: 'rogue' });
    const rogue = createCertificate({ issuer: rogueCA, commonName: 'kube-apiserver-webhook-client', usage: 'client' });
    expect(await postReview(hook, forgedUpdate(victim, 'billing', victimSealed, secret), rogue)).toHaveProperty(
      'error',
    );
  });

  it("even with the API server's own client certificate, a right and a wrong guess get the same answer and never the victim's ciphertext", async () => {
    // Defence in depth: suppose the webhook client certificate leaked. The answer must still be no oracle.
    const pki = devPki();
    const apiserver = {
      certPem: readFileSync(path.join(pki, 'webhook-client.crt'), 'utf8'),
      keyPem: readFileSync(path.join(pki, 'webhook-client.key'), 'utf8'),
    };
    const victimSealed = stored.spec.credentials!.token!.sealed!;
    const right = await postReview(hook, forgedUpdate(victim, 'billing', victimSealed, secret), apiserver);
    const wrong = await postReview(
      hook,
      forgedUpdate(victim, 'billing', victimSealed, randomSecret('guess')),
      apiserver,
    );
    if (!('body' in right) || !('body' in wrong))
      throw new Error(`the webhook did not answer the API server's certificate: ${JSON.stringify({ right, wrong })}`);
    expect(right.status).toBe(200);
    const r = normalise(right.body);
    const w = normalise(wrong.body);
    expect(r.shape).toEqual(w.shape);
    expect(r.sealed).toHaveLength(1);
    expect([...r.sealed, ...w.sealed]).not.toContain(victimSealed);
    expect(right.body).not.toContain(secret);
  });

  it('a server-side dry-run UPDATE by an editor is no oracle either, and stores nothing', async () => {
    const editor = userKubeconfig('someone', [`${victim}-editors`]);
    const secretBefore = await admin().get<Secret>(Secrets, 'billing-credentials', victim);
    const attempt = async (guess: string) => {
      const manifest = {
        apiVersion: 'atoll.dev/v1alpha1',
        kind: 'ExternalConnection',
        metadata: { name: 'billing', namespace: victim },
        spec: {
          type: 'http-api',
          settings: SETTINGS,
          credentials: { token: { value: guess } },
          probe: { interval: '0' },
        },
      };
      const r = await kubectl(
        ['apply', '--server-side', '--force-conflicts', '--dry-run=server', '-o', 'json', '-f', '-'],
        { kubeconfig: editor, input: stringify(manifest) },
      );
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout + r.stderr).not.toContain(guess);
      return JSON.parse(r.stdout) as Conn;
    };
    const right = await attempt(secret);
    const wrong = await attempt(randomSecret('guess'));
    const victimSealed = stored.spec.credentials!.token!.sealed!;
    for (const answer of [right, wrong]) {
      expect(answer.spec.credentials?.token?.sealed).toMatch(/^atoll:v1:/);
      expect(answer.spec.credentials?.token?.sealed).not.toBe(victimSealed);
      expect(answer.spec.credentials?.token?.value).toBeUndefined();
    }
    expect(Object.keys(right.spec.credentials!.token!)).toEqual(Object.keys(wrong.spec.credentials!.token!));
    // Dry runs stored nothing: the connection and its managed Secret are as they were.
    const after = await admin().get<Conn>(ExternalConnections, 'billing', victim);
    expect(after.metadata.generation).toBe(stored.metadata.generation);
    expect(after.spec.credentials?.token?.sealed).toBe(victimSealed);
    expect((await admin().get<Secret>(Secrets, 'billing-credentials', victim)).metadata?.resourceVersion).toBe(
      secretBefore.metadata?.resourceVersion,
    );
    // And the editor still cannot read the answer anywhere else.
    await expect(
      userClient('someone', [`${victim}-editors`]).get(Secrets, 'billing-credentials', victim),
    ).rejects.toMatchObject({ status: 403 });
  });
});
