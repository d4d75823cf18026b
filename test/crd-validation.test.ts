/**
 * The CRDs' own validation (OpenAPI schema + CEL), proven against a real
 * kube-apiserver with ONLY the CRDs installed: no atoll webhook, no operator.
 * This is the floor that holds when admission is bypassed or the webhook
 * configuration is deleted, above all that a plaintext `value` is never
 * persisted and the user is told how to seal it. The cases are data in
 * src/api/v1alpha1/testdata/crd-validation-cases.yaml, shared with the unit
 * tests of the generated validators.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { API_VERSION } from '../src/api/v1alpha1/index.js';
import { applyManifests, readManifests } from '../src/cli/install.js';
import type { KubeClient, KubeObject } from '../src/kube/client.js';
import { KubeApiError } from '../src/kube/errors.js';
import {
  ExternalConnections,
  IntegrationTypes,
  Namespaces,
  Workspaces,
  resourcePath,
  type ResourceType,
} from '../src/kube/resources.js';
import { packageRoot } from '../src/dev/binaries.js';
import { ControlPlane } from '../src/dev/control-plane.js';
import { kubectl, randomSecret } from './support/cluster.js';

interface CaseObject extends KubeObject {
  kind: 'Workspace' | 'ExternalConnection' | 'IntegrationType';
  metadata: { name: string };
  spec?: Record<string, unknown>;
}

interface ValidationCase {
  name: string;
  object: CaseObject;
  update?: CaseObject;
  /** Substrings that must all appear in the API server's error; absent = must succeed. */
  rejects?: string[];
  /** Substrings that must never appear in the error (e.g. the plaintext). */
  mustNotContain?: string[];
  /** Fields the stored spec must contain (defaults the schema applies). */
  expectSpec?: Record<string, unknown>;
}

const NAMESPACE = 'acme';
const RESOURCES: Record<CaseObject['kind'], ResourceType> = {
  Workspace: Workspaces,
  ExternalConnection: ExternalConnections,
  IntegrationType: IntegrationTypes,
};
const root = packageRoot();
const cases = parse(
  readFileSync(path.join(root, 'src/api/v1alpha1/testdata/crd-validation-cases.yaml'), 'utf8'),
) as ValidationCase[];

/** The object as a client would send it: apiVersion, and the namespace for namespaced kinds. */
function wire(obj: CaseObject, extra: Record<string, unknown> = {}): CaseObject {
  const t = RESOURCES[obj.kind];
  return {
    apiVersion: API_VERSION,
    ...obj,
    metadata: { ...obj.metadata, ...(t.namespaced ? { namespace: NAMESPACE } : {}), ...extra },
  };
}

/** Strict field validation, as kubectl sends it: unknown fields are errors, not warnings. */
async function create(client: KubeClient, obj: CaseObject): Promise<KubeObject & { spec?: Record<string, unknown> }> {
  const t = RESOURCES[obj.kind];
  return client.request(
    'POST',
    `${resourcePath(t, { namespace: t.namespaced ? NAMESPACE : undefined })}?fieldValidation=Strict`,
    wire(obj),
  );
}

async function replace(client: KubeClient, obj: CaseObject, resourceVersion: string): Promise<KubeObject> {
  const t = RESOURCES[obj.kind];
  return client.request(
    'PUT',
    `${resourcePath(t, { namespace: t.namespaced ? NAMESPACE : undefined, name: obj.metadata.name })}?fieldValidation=Strict`,
    wire(obj, { resourceVersion }),
  );
}

async function failure(p: Promise<unknown>): Promise<KubeApiError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof KubeApiError))
    throw new Error('expected the API server to refuse the request, but it was accepted', { cause: err });
  return err;
}

describe('CRD validation without the webhook (testdata/crd-validation-cases.yaml)', () => {
  let cp: ControlPlane;
  let client: KubeClient;
  beforeAll(async () => {
    cp = await ControlPlane.start({ controllerManager: false });
    client = cp.adminClient();
    await applyManifests(client, readManifests([path.join(root, 'crds')]));
    await client.create(Namespaces, { metadata: { name: NAMESPACE } });
  });
  afterAll(async () => {
    await cp?.stop();
  });

  it('has cases to run', () => {
    expect(cases.length).toBeGreaterThan(10);
  });

  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const t = RESOURCES[c.object.kind];
    const namespace = t.namespaced ? NAMESPACE : undefined;
    let attempt: Promise<unknown>;
    if (c.update) {
      const created = await create(client, c.object);
      attempt = replace(client, c.update, created.metadata!.resourceVersion!);
    } else {
      attempt = create(client, c.object);
    }

    if (!c.rejects) {
      await attempt;
      const stored = await client.get<KubeObject & { spec?: Record<string, unknown> }>(
        t,
        c.object.metadata.name,
        namespace,
      );
      expect(stored.spec).toMatchObject((c.update ?? c.object).spec ?? {});
      if (c.expectSpec) expect(stored.spec).toMatchObject(c.expectSpec);
      return;
    }

    const err = await failure(attempt);
    expect(err.status, err.message).toBeGreaterThanOrEqual(400);
    expect(err.status, err.message).toBeLessThan(500);
    for (const text of c.rejects) expect(err.message).toContain(text);
    for (const text of c.mustNotContain ?? []) expect(err.message).not.toContain(text);
    if (!c.update) expect(await client.tryGet(t, c.object.metadata.name, namespace)).toBeUndefined();
  });

  it('kubectl create of a plaintext value tells the user how to seal, and stores nothing', async () => {
    const plaintext = randomSecret('kubectlplain');
    const manifest = stringify({
      apiVersion: API_VERSION,
      kind: 'ExternalConnection',
      metadata: { name: 'kubectl-plaintext', namespace: NAMESPACE },
      spec: {
        type: 'http-api',
        settings: { baseURL: 'https://127.0.0.1:9' },
        credentials: { token: { value: plaintext } },
      },
    });
    const kubeconfig = cp.writeKubeconfigFor('admin', ['system:masters']);
    const res = await kubectl(['create', '-f', '-'], { kubeconfig, input: manifest });
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('spec.credentials.token.value is write-only plaintext and is never stored');
    expect(res.stderr).toContain('atoll seal');
    expect(res.stderr).toContain('kubectl atoll seal');
    expect(res.stderr + res.stdout).not.toContain(plaintext);
    expect(await client.tryGet(ExternalConnections, 'kubectl-plaintext', NAMESPACE)).toBeUndefined();
  });
});
