import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExternalConnection } from '../../src/api/v1alpha1/index.js';
import type { KubeObject } from '../../src/kube/client.js';
import { ExternalConnections, RoleBindings, Secrets } from '../../src/kube/resources.js';
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
import { bearers, gatewayWorkload, LOOPBACK_EGRESS } from './support.js';

type Conn = ExternalConnection & KubeObject;
const b64 = (s: string) => Buffer.from(s).toString('base64');

/**
 * Someone who may write Secrets in a workspace namespace (the built-in edit
 * role) creates Secrets that claim to be atoll's (`managed-by=atoll`, so the
 * gateway's label-selected watch delivers them) with state annotations no
 * operator writes: JSON null, an array, field names such as `__proto__`.
 * The gateway caches a view of every such Secret; building it must not fail,
 * or the namespace's watch stops and every connection there stops rotating.
 * None of them is ever served.
 */
describe("attack: hostile Secrets labelled as atoll's in a workspace namespace", () => {
  const ns = uniqueName('hostile-view');
  const v1 = randomSecret('first');
  const v2 = randomSecret('second');
  let upstream: HttpFixture;
  let call: Awaited<ReturnType<typeof gatewayWorkload>>;
  const get = () => admin().get<Conn>(ExternalConnections, 'real', ns);

  beforeAll(async () => {
    upstream = await startHttpFixture();
    await createWorkspace(ns, { policy: LOOPBACK_EGRESS });
    await admin().create(RoleBindings, {
      metadata: { name: 'ci-deployer-edit', namespace: ns },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'edit' },
      subjects: [{ kind: 'User', name: 'ci-deployer', apiGroup: 'rbac.authorization.k8s.io' }],
    });
    for (const name of ['real', 'proto'])
      await admin().create(ExternalConnections, {
        metadata: { name, namespace: ns },
        spec: {
          type: 'http-api',
          settings: { baseURL: upstream.url, auth: 'bearer' },
          credentials: { token: { value: name === 'real' ? v1 : randomSecret('proto') } },
          probe: { interval: '0' },
        },
      } as never);
    await eventually('version 1 Ready', get, (c) => condition(c, 'Ready')?.status === 'True');
    call = await gatewayWorkload(ns);
    await eventually(
      'the gateway serves version 1',
      () => call('real'),
      (r) => r.status === 200 && bearers(upstream).at(-1) === v1,
    );
  });

  afterAll(async () => {
    await upstream?.stop();
  });

  it("keeps serving and rotating the namespace's connections, and serves none of the hostile Secrets", async () => {
    const deployer = userClient('ci-deployer');
    const hostile = (name: string, annotation: string, data: Record<string, string>, extra: object = {}) =>
      deployer.create(Secrets, {
        metadata: {
          name,
          namespace: ns,
          labels: { 'app.kubernetes.io/managed-by': 'atoll', 'atoll.dev/connection': 'proto' },
          annotations: { 'atoll.dev/credentials': annotation },
        },
        data,
        ...extra,
      } as KubeObject);
    await hostile('hostile-null', 'null', { token: b64('x') });
    await hostile('hostile-array', '[{"format":2,"version":9}]', { token: b64('x') });
    await hostile('hostile-string', '"format"', { token: b64('x') });
    // Not the operator's copy for `proto` (it exists: the name is taken), but the same shape under prototype names.
    await hostile(
      'proto-credentials-2',
      JSON.stringify({ ['__proto__']: { format: 2, version: 1 }, constructor: { format: 2, version: 1 } }),
      { ['__proto__']: b64('x'), constructor: b64('y') },
      { type: 'atoll.dev/sealed' },
    );

    // The watch still delivers: a rotation after the hostile Secrets reaches the next request.
    await admin().mergePatch(ExternalConnections, 'real', ns, {
      spec: { credentials: { token: { value: v2, sealed: null } } },
    });
    await eventually(
      'version 2 Ready',
      get,
      (c) => c.status?.credentials?.token?.version === 2 && condition(c, 'Ready')?.status === 'True',
    );
    await eventually(
      'the gateway serves version 2',
      () => call('real'),
      (r) => r.status === 200 && bearers(upstream).at(-1) === v2,
    );

    // The operator's own copy for `proto` is still what `proto` gets; no hostile value went upstream.
    expect((await call('proto')).status).toBe(200);
    for (const value of ['x', 'y']) expect(bearers(upstream)).not.toContain(value);
  });
});
