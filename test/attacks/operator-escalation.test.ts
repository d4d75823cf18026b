/**
 * Attack: the operator (compromised, or buggy) grants itself Secrets outside
 * workspace namespaces. Its RBAC lets it create RoleBindings anywhere and
 * `bind` atoll-operator-secrets, and patch any Namespace; the admission
 * policies in config/policy (installed by `atoll dev` as by the chart) fence
 * that. Every request below is made as the operator's ServiceAccount (or as
 * another identity) against the real API server of `atoll dev`, and every
 * test checks that nothing was stored and no Secret became readable.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KubeClient, KubeObject } from '../../src/kube/client.js';
import { KubeApiError } from '../../src/kube/errors.js';
import {
  ClusterRoleBindings,
  ClusterRoles,
  ExternalConnections,
  Namespaces,
  RoleBindings,
  Roles,
  Secrets,
  ServiceAccounts,
  SubjectAccessReviews,
  Workspaces,
} from '../../src/kube/resources.js';
import { startHttpFixture, type HttpFixture } from '../support/services.js';
import {
  admin,
  condition,
  createWorkspace,
  eventually,
  randomSecret,
  uniqueName,
  userClient,
} from '../support/cluster.js';
import { gatewayCall } from './support/tenant.js';

const OPERATOR_NS = 'atoll-system';
const OPERATOR = `system:serviceaccount:${OPERATOR_NS}:atoll-controller`;
const SA_GROUPS = ['system:serviceaccounts', `system:serviceaccounts:${OPERATOR_NS}`, 'system:authenticated'];
const SECRET_ROLES = ['atoll-operator-secrets', 'atoll-gateway-secrets'] as const;
const RBAC = 'rbac.authorization.k8s.io';

/** The operator's ServiceAccount, impersonated (a client certificate for its user name and groups). */
const operator = (): KubeClient => userClient(OPERATOR, SA_GROUPS);

function secretsBinding(
  namespace: string,
  role: string,
  subject?: Record<string, string>,
  name = role,
  labels: Record<string, string> = { 'app.kubernetes.io/managed-by': 'atoll' },
) {
  return {
    metadata: { name, namespace, labels },
    roleRef: { apiGroup: RBAC, kind: 'ClusterRole', name: role },
    subjects: [
      subject ?? {
        kind: 'ServiceAccount',
        name: role === 'atoll-operator-secrets' ? 'atoll-controller' : 'atoll-gateway',
        namespace: OPERATOR_NS,
      },
    ],
  };
}

/** The request failed as a denial (403, or 422 where a policy's params are missing), not for another reason. */
async function refused(p: Promise<unknown>, statuses = [403]): Promise<KubeApiError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(KubeApiError);
  expect(statuses, (err as KubeApiError).message).toContain((err as KubeApiError).status);
  return err as KubeApiError;
}

/** Both policies refuse a secret-role RoleBinding outside workspaces; the API server reports the first denial. */
const NOT_A_WORKSPACE =
  /ValidatingAdmissionPolicy 'atoll-(secret-role-bindings|operator-fence)' .*denied request: .*(is not a workspace namespace|only in workspace namespaces)/;

async function allowedByRbac(
  user: string,
  groups: string[],
  verb: string,
  resource: string,
  namespace: string,
  opts: { group?: string; name?: string } = {},
): Promise<boolean> {
  const review = await admin().review<KubeObject & { status?: { allowed?: boolean } }>(SubjectAccessReviews, {
    spec: { user, groups, resourceAttributes: { verb, resource, group: opts.group ?? '', namespace, name: opts.name } },
  } as never);
  return review.status?.allowed === true;
}

describe('attack: the operator grants itself Secrets outside workspace namespaces', () => {
  const plain = uniqueName('not-a-workspace');
  const ws = uniqueName('fenced-ws');
  const precious = randomSecret('precious');

  beforeAll(async () => {
    await admin().create(Namespaces, { metadata: { name: plain } });
    await admin().create(Secrets, {
      metadata: { name: 'precious', namespace: plain },
      stringData: { token: precious },
    } as never);
    await createWorkspace(ws, { members: [{ kind: 'User', name: 'tenant-admin', role: 'admin' }] });
  });

  afterAll(async () => {
    await admin()
      .delete(Namespaces, plain)
      .catch(() => undefined);
  });

  it('refuses a RoleBinding to atoll-operator-secrets or atoll-gateway-secrets in kube-system; nothing is stored, nothing readable', async () => {
    // RBAC alone would allow it: the operator holds `bind` on both and may create RoleBindings anywhere.
    expect(await allowedByRbac(OPERATOR, SA_GROUPS, 'create', 'rolebindings', 'kube-system', { group: RBAC })).toBe(
      true,
    );
    expect(
      await allowedByRbac(OPERATOR, SA_GROUPS, 'bind', 'clusterroles', '', {
        group: RBAC,
        name: 'atoll-operator-secrets',
      }),
    ).toBe(true);
    for (const role of SECRET_ROLES) {
      const err = await refused(operator().create(RoleBindings, secretsBinding('kube-system', role) as never));
      expect(err.message).toMatch(NOT_A_WORKSPACE);
      expect(err.message).toContain('kube-system');
      expect(await admin().tryGet(RoleBindings, role, 'kube-system')).toBeUndefined();
    }
    await refused(operator().list(Secrets, { namespace: 'kube-system' }));
  });

  it('refuses one in a namespace that is not a workspace, and the Secret there stays out of reach', async () => {
    const err = await refused(
      operator().create(RoleBindings, secretsBinding(plain, 'atoll-operator-secrets') as never),
    );
    expect(err.message).toMatch(NOT_A_WORKSPACE);
    expect(err.message).toContain(plain);
    expect(await admin().tryGet(RoleBindings, 'atoll-operator-secrets', plain)).toBeUndefined();
    await refused(operator().get(Secrets, 'precious', plain));
  });

  it('refuses one in a namespace the operator labelled itself: a workspace namespace needs a Workspace, which the operator cannot create', async () => {
    // The operator may set atoll.dev/* labels (it labels workspace namespaces), so the label alone is no proof.
    await operator().mergePatch(Namespaces, plain, undefined, {
      metadata: { labels: { 'atoll.dev/workspace': 'forged' } },
    });
    try {
      await eventually(
        'the forged label is visible',
        () => admin().get<KubeObject>(Namespaces, plain),
        (n) => n.metadata?.labels?.['atoll.dev/workspace'] === 'forged',
      );
      for (const role of SECRET_ROLES) {
        const err = await refused(operator().create(RoleBindings, secretsBinding(plain, role) as never), [403, 422]);
        expect(err.message).toContain("ValidatingAdmissionPolicy 'atoll-secret-role-bindings-need-workspace'");
        expect(err.message).toContain('no params found');
        expect(await admin().tryGet(RoleBindings, role, plain)).toBeUndefined();
      }
      // Leaving out the label that puts it in scope of that policy does not help.
      const unlabelled = await refused(
        operator().create(
          RoleBindings,
          secretsBinding(plain, 'atoll-operator-secrets', undefined, 'unlabelled', {}) as never,
        ),
      );
      expect(unlabelled.message).toContain('carry the label app.kubernetes.io/managed-by=atoll');
      await refused(
        operator().create(Workspaces, { metadata: { name: 'forged', namespace: plain }, spec: {} } as never),
      );
      await refused(operator().get(Secrets, 'precious', plain));
    } finally {
      await operator().mergePatch(Namespaces, plain, undefined, {
        metadata: { labels: { 'atoll.dev/workspace': null } },
      });
    }
  });

  it("refuses such a RoleBinding from anyone but the operator, even with bind rights, and one that binds anybody but atoll's ServiceAccounts", async () => {
    const bot = uniqueName('platform-bot');
    const clusterRole = uniqueName('binds-operator-secrets');
    await admin().create(ClusterRoles, {
      metadata: { name: clusterRole },
      rules: [
        { apiGroups: [RBAC], resources: ['rolebindings'], verbs: ['create'] },
        { apiGroups: [RBAC], resources: ['clusterroles'], verbs: ['bind'], resourceNames: [...SECRET_ROLES] },
      ],
    } as never);
    await admin().create(ClusterRoleBindings, {
      metadata: { name: clusterRole },
      roleRef: { apiGroup: RBAC, kind: 'ClusterRole', name: clusterRole },
      subjects: [{ apiGroup: RBAC, kind: 'User', name: bot }],
    } as never);
    try {
      await eventually(
        'RBAC lets the bot bind',
        () =>
          allowedByRbac(bot, ['system:authenticated'], 'bind', 'clusterroles', '', {
            group: RBAC,
            name: 'atoll-operator-secrets',
          }),
        (ok) => ok,
      );
      const toBot = { apiGroup: RBAC, kind: 'User', name: bot };
      const err = await refused(
        userClient(bot).create(RoleBindings, secretsBinding(ws, 'atoll-operator-secrets', toBot, 'bot-grab') as never),
      );
      expect(err.message).toContain(`are made only by the atoll operator (${OPERATOR})`);
      // Even a cluster admin: the policy is admission, not RBAC (the Workspace reconciler is the one writer).
      await refused(
        admin().create(RoleBindings, secretsBinding(ws, 'atoll-gateway-secrets', toBot, 'admin-grab') as never),
      );
      // And the operator itself may bind them only to the controller and the gateway.
      const toTenant = await refused(
        operator().create(
          RoleBindings,
          secretsBinding(
            ws,
            'atoll-operator-secrets',
            { apiGroup: RBAC, kind: 'User', name: 'tenant-admin' },
            'tenant-grab',
          ) as never,
        ),
      );
      expect(toTenant.message).toContain(
        `atoll-operator-secrets may be bound only to ServiceAccount ${OPERATOR_NS}/atoll-controller`,
      );
      for (const name of ['bot-grab', 'admin-grab', 'tenant-grab'])
        expect(await admin().tryGet(RoleBindings, name, ws)).toBeUndefined();
      await refused(userClient('tenant-admin').list(Secrets, { namespace: ws }));
      await refused(userClient(bot).list(Secrets, { namespace: ws }));
    } finally {
      await admin().delete(ClusterRoleBindings, clusterRole);
      await admin().delete(ClusterRoles, clusterRole);
    }
  });

  it('lets the operator change only atoll.dev/* labels and annotations of a Namespace, and none of kube-*, default or its own', async () => {
    const op = operator();
    for (const patch of [
      { metadata: { labels: { team: 'payments' } } },
      { metadata: { annotations: { 'scheduler.alpha.kubernetes.io/node-selector': 'pool=tenant' } } },
      { metadata: { labels: { 'pod-security.kubernetes.io/enforce': 'privileged' } } },
      { metadata: { finalizers: ['example.com/hold'] } },
    ]) {
      const err = await refused(op.mergePatch(Namespaces, ws, undefined, patch));
      expect(err.message).toContain(
        'the atoll operator may change only atoll.dev/* labels and annotations of a Namespace',
      );
    }
    for (const ns of ['kube-system', 'default', OPERATOR_NS]) {
      const err = await refused(
        op.mergePatch(Namespaces, ns, undefined, { metadata: { labels: { 'atoll.dev/workspace': 'x' } } }),
      );
      expect(err.message).toContain(`the atoll operator may not change namespace ${ns}`);
    }
    const after = await admin().get<KubeObject & { spec?: { finalizers?: string[] } }>(Namespaces, ws);
    expect(after.metadata?.labels?.team).toBeUndefined();
    expect(after.metadata?.labels?.['pod-security.kubernetes.io/enforce']).toBeUndefined();
    expect(after.metadata?.finalizers ?? []).toEqual([]);
    expect(
      (await admin().get<KubeObject>(Namespaces, 'kube-system')).metadata?.labels?.['atoll.dev/workspace'],
    ).toBeUndefined();
    // Its own annotations are fine.
    await op.mergePatch(Namespaces, ws, undefined, { metadata: { annotations: { 'atoll.dev/note': 'ok' } } });
    await op.mergePatch(Namespaces, ws, undefined, { metadata: { annotations: { 'atoll.dev/note': null } } });
  });

  it("keeps the operator to atoll's own Roles and RoleBindings, none granting Secrets, even where it holds Secret access", async () => {
    const op = operator();
    // In a workspace namespace the operator may read Secrets, so RBAC would let it write a Role that does too.
    expect(await allowedByRbac(OPERATOR, SA_GROUPS, 'get', 'secrets', ws)).toBe(true);
    const secretRule = [{ apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list'] }];
    for (const name of ['secret-reader', 'atoll-viewer']) {
      const err = await refused(op.apply(Roles, { metadata: { name, namespace: ws }, rules: secretRule } as never));
      expect(err.message).toContain('never grant Secrets');
    }
    const err = await refused(
      op.create(RoleBindings, {
        metadata: { name: 'view-for-tenant', namespace: ws },
        roleRef: { apiGroup: RBAC, kind: 'ClusterRole', name: 'atoll-integrationtype-reader' },
        subjects: [{ apiGroup: RBAC, kind: 'User', name: 'tenant-admin' }],
      } as never),
    );
    expect(err.message).toContain("binds only the tenant Roles and atoll's own ClusterRoles");
    expect(await admin().tryGet(Roles, 'secret-reader', ws)).toBeUndefined();
    const viewer = await admin().get<KubeObject & { rules: Array<{ resources: string[] }> }>(Roles, 'atoll-viewer', ws);
    expect(viewer.rules.flatMap((r) => r.resources)).not.toContain('secrets');
    // Outside workspace namespaces it writes no Role at all.
    await refused(op.create(Roles, { metadata: { name: 'atoll-viewer', namespace: plain }, rules: [] } as never));
  });

  it('gives tenants no way to make a namespace a workspace: no tenant role may write Namespaces', async () => {
    for (const verb of ['patch', 'update']) {
      expect(await allowedByRbac('tenant-admin', ['system:authenticated'], verb, 'namespaces', '', { name: ws })).toBe(
        false,
      );
    }
    await refused(
      userClient('tenant-admin').mergePatch(Namespaces, ws, undefined, {
        metadata: { labels: { 'atoll.dev/workspace': 'mine' } },
      }),
    );
    await refused(
      userClient('tenant-admin').create(
        RoleBindings,
        secretsBinding(
          ws,
          'atoll-operator-secrets',
          { apiGroup: RBAC, kind: 'User', name: 'tenant-admin' },
          'tenant-self-grab',
        ) as never,
      ),
    );
    expect((await admin().get<KubeObject>(Namespaces, ws)).metadata?.labels?.['atoll.dev/workspace']).toBe(ws);
  });

  it("leaves a Workspace in the default namespace at RBACReady=False with the policy's message, and lets it be deleted", async () => {
    const name = uniqueName('in-default');
    await admin().create(Workspaces, { metadata: { name, namespace: 'default' }, spec: {} } as never);
    try {
      const ws = await eventually(
        'RBACReady=False',
        () =>
          admin().get<
            KubeObject & {
              status?: { conditions?: Array<{ type: string; status: string; reason: string; message: string }> };
            }
          >(Workspaces, name, 'default'),
        (w) => condition(w, 'RBACReady')?.status === 'False',
      );
      expect(condition(ws, 'RBACReady')).toMatchObject({ reason: 'RBACFailed' });
      expect(condition(ws, 'RBACReady')?.message).toContain(
        "refused by atoll's admission policy: ValidatingAdmissionPolicy 'atoll-operator-fence'",
      );
      expect(condition(ws, 'RBACReady')?.message).toContain('the atoll operator may not change namespace default');
      expect(
        (await admin().get<KubeObject>(Namespaces, 'default')).metadata?.labels?.['atoll.dev/workspace'],
      ).toBeUndefined();
      for (const role of SECRET_ROLES) expect(await admin().tryGet(RoleBindings, role, 'default')).toBeUndefined();
    } finally {
      await admin().delete(Workspaces, name, 'default');
      await eventually(
        'Workspace in default gone',
        () => admin().tryGet(Workspaces, name, 'default'),
        (w) => w === undefined,
      );
    }
  });

  describe('normal reconciliation under the fence', () => {
    let fixture: HttpFixture;
    const token = randomSecret('fence-token');
    const fresh = uniqueName('fresh-ws');

    beforeAll(async () => {
      fixture = await startHttpFixture((req, res) => {
        res.statusCode = req.headers.authorization === `Bearer ${token}` ? 200 : 401;
        res.end(res.statusCode === 200 ? 'ok' : 'no');
      });
    });
    afterAll(async () => {
      await fixture?.stop();
    });

    it('a new Workspace gets RBACReady=True, its connection is sealed, probed and proxied, and deleting it removes the grants and the label', async () => {
      const created = await createWorkspace(fresh, { policy: { egress: { allowCIDRs: ['127.0.0.0/8'] } } });
      expect(condition(created, 'RBACReady')).toMatchObject({ status: 'True', reason: 'Succeeded' });
      for (const role of SECRET_ROLES) expect(await admin().tryGet(RoleBindings, role, fresh)).toBeDefined();

      await admin().create(ExternalConnections, {
        metadata: { name: 'api', namespace: fresh },
        spec: {
          type: 'http-api',
          settings: { baseURL: fixture.url, auth: 'bearer' },
          credentials: { token: { value: token } },
        },
      } as never);
      const conn = await eventually(
        'connection api Ready',
        () =>
          admin().get<
            KubeObject & {
              status?: { conditions?: Array<{ type: string; status: string; reason: string; message: string }> };
            }
          >(ExternalConnections, 'api', fresh),
        (c) => condition(c, 'Ready')?.status === 'True',
      );
      expect(condition(conn, 'CredentialsSealed')).toMatchObject({ status: 'True' });
      expect(fixture.requests.some((r) => r.headers.authorization === `Bearer ${token}`)).toBe(true);

      // The gateway reads the ciphertext through its per-workspace RoleBinding.
      await admin().create(ServiceAccounts, { metadata: { name: 'app', namespace: fresh } } as never);
      await admin().create(RoleBindings, {
        metadata: { name: 'app-uses', namespace: fresh },
        roleRef: { apiGroup: RBAC, kind: 'ClusterRole', name: 'atoll-connection-user' },
        subjects: [{ kind: 'ServiceAccount', name: 'app', namespace: fresh }],
      } as never);
      const tokenReview = await admin().request<{ status: { token: string } }>(
        'POST',
        `/api/v1/namespaces/${fresh}/serviceaccounts/app/token`,
        {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenRequest',
          spec: { audiences: ['atoll-gateway'], expirationSeconds: 600 },
        },
      );
      const before = fixture.requests.length;
      // The gateway serves HTTPS; gatewayCall verifies it with the dev CA.
      const res = await gatewayCall('/v1/connections/api/proxy/through-the-gateway', tokenReview.status.token);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('ok');
      const proxied = fixture.requests.slice(before).find((r) => r.url === '/through-the-gateway');
      expect(proxied?.headers.authorization).toBe(`Bearer ${token}`);

      // Deleting the Workspace: the finalizer removes the grants (deletes are not fenced), then the label (an atoll label).
      await admin().delete(Workspaces, fresh, fresh);
      await eventually(
        'Workspace gone',
        () => admin().tryGet(Workspaces, fresh, fresh),
        (w) => w === undefined,
      );
      for (const role of SECRET_ROLES) expect(await admin().tryGet(RoleBindings, role, fresh)).toBeUndefined();
      expect(
        (await admin().get<KubeObject>(Namespaces, fresh)).metadata?.labels?.['atoll.dev/workspace'],
      ).toBeUndefined();
    });

    it('deleting a workspace namespace is not blocked', async () => {
      const doomed = uniqueName('doomed-ws');
      await createWorkspace(doomed);
      await admin().delete(Namespaces, doomed);
      await eventually(
        'namespace gone',
        () => admin().tryGet(Namespaces, doomed),
        (n) => n === undefined,
        90_000,
      );
    });
  });
});
