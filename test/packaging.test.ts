/**
 * The shipped packaging (charts/atoll, config/, hack/sync-manifests.sh) proven
 * against a real kube-apiserver: the chart and the kustomize bases render,
 * lint, and pass server-side dry-run; the RBAC they grant, really applied, is
 * what docs/rbac.md promises, checked with SubjectAccessReviews and with
 * impersonated writes (so `bind` without `escalate` is exercised for real).
 */
import { execFileSync, spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TENANT_ROLES, tenantRoleName, tenantRules } from '../src/controllers/workspace/tenant-rbac.js';
import { loadFingerprintKey, SecretKeyRingStore } from '../src/crypto/secret-key-ring-store.js';
import { RoleBindings, Roles } from '../src/kube/resources.js';
import { pinnedVersions } from '../src/dev/binaries.js';
import { ControlPlane } from '../src/dev/control-plane.js';
import { freePort, waitFor } from '../src/dev/ports.js';
import { ensureServingCertificate } from '../src/webhooks/certs.js';
import { registerWebhooks } from '../src/webhooks/registration.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const NS = 'atoll-system';
const CONTROLLER = `system:serviceaccount:${NS}:atoll-controller`;
const GATEWAY = `system:serviceaccount:${NS}:atoll-gateway`;
const SA_GROUPS = ['system:serviceaccounts', `system:serviceaccounts:${NS}`, 'system:authenticated'];
const NON_DEFAULT_VALUES = [
  'webhook.certManager.enabled=true',
  'metrics.serviceMonitor.enabled=true',
  'metrics.prometheusRule.enabled=true',
  'controller.replicas=3',
  'kms.provider=aws-kms',
  'kms.keyId=alias/atoll',
  'kms.aws.region=eu-west-1',
];
const VAULT_VALUES = [
  'kms.provider=vault-transit',
  'kms.keyId=transit/keys/atoll',
  'kms.vault.address=https://vault.vault.svc:8200',
  'kms.vault.namespace=team-a',
];

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}
interface Rule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
  resourceNames?: string[];
}
interface PodSpec {
  securityContext?: Record<string, unknown>;
  containers: {
    name: string;
    args?: string[];
    env?: { name: string; value?: string }[];
    securityContext?: Record<string, unknown>;
  }[];
}

let helm = '';

function run(
  bin: string,
  args: string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv } = {},
): SpawnSyncReturns<string> {
  return spawnSync(bin, args, {
    cwd: root,
    encoding: 'utf8',
    input: opts.input,
    env: opts.env ?? process.env,
    maxBuffer: 64 * 1024 * 1024,
  });
}

function mustRun(bin: string, args: string[], opts: { input?: string } = {}): string {
  const r = run(bin, args, opts);
  if (r.status !== 0) throw new Error(`${bin} ${args.slice(0, 3).join(' ')} failed (${r.status}):\n${r.stderr}`);
  return r.stdout;
}

function helmTemplate(sets: string[] = []): SpawnSyncReturns<string> {
  const kubeVersion = pinnedVersions().KUBERNETES_VERSION!;
  return run(helm, [
    'template',
    'atoll',
    'charts/atoll',
    '--namespace',
    NS,
    '--kube-version',
    kubeVersion,
    ...sets.flatMap((s) => ['--set', s]),
  ]);
}

function render(sets: string[] = []): string {
  const r = helmTemplate(sets);
  if (r.status !== 0) throw new Error(`helm template failed:\n${r.stderr}`);
  return r.stdout;
}

function docs(yamlText: string): Manifest[] {
  return parseAllDocuments(yamlText)
    .map((d) => d.toJS() as Manifest | null)
    .filter((m): m is Manifest => m !== null);
}

function find(ms: Manifest[], kind: string, name: string): Manifest {
  const m = ms.find((x) => x.kind === kind && x.metadata.name === name);
  if (!m) throw new Error(`${kind}/${name} is not in the rendered manifests`);
  return m;
}

function podSpec(m: Manifest): PodSpec {
  return (m as unknown as { spec: { template: { spec: PodSpec } } }).spec.template.spec;
}

function envOf(m: Manifest, name: string): string | undefined {
  return podSpec(m).containers[0]!.env?.find((e) => e.name === name)?.value;
}

function rulesOf(m: Manifest): Rule[] {
  return (m as unknown as { rules: Rule[] }).rules;
}

/** Rules as a sorted set of `group/resource/name:verb` grants, so that equal permissions compare equal however they are grouped. */
function grants(rules: Rule[]): string[] {
  const out = new Set<string>();
  for (const r of rules) {
    for (const g of r.apiGroups ?? [])
      for (const res of r.resources ?? [])
        for (const n of r.resourceNames ?? ['*']) for (const v of r.verbs) out.add(`${g}/${res}/${n}:${v}`);
  }
  return [...out].sort();
}

function grantsSecrets(m: Manifest): boolean {
  return rulesOf(m).some(
    (r) => (r.apiGroups ?? []).includes('') && (r.resources ?? []).some((x) => x === 'secrets' || x === '*'),
  );
}

beforeAll(() => {
  const out = execFileSync('bash', [path.join(root, 'hack', 'build-helm.sh')], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  helm = out.trim().split('\n').pop()!;
}, 900_000);

describe('manifest copies (hack/sync-manifests.sh)', () => {
  it('config/crd, the chart files and the Argo CD patch match their sources', () => {
    const r = run('bash', ['hack/sync-manifests.sh', '--check']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('fails, naming the copy, when a copy drifts from its source', () => {
    const scratch = mkdtempSync(path.join(tmpdir(), 'atoll-sync-'));
    try {
      for (const p of ['crds', 'config/types', 'config/crd', 'config/argocd', 'charts/atoll/files', 'hack/argocd']) {
        mkdirSync(path.dirname(path.join(scratch, p)), { recursive: true });
        cpSync(path.join(root, p), path.join(scratch, p), { recursive: true });
      }
      const env = { ...process.env, ATOLL_SYNC_ROOT: scratch };
      expect(run('bash', ['hack/sync-manifests.sh', '--check'], { env }).status).toBe(0);
      const copy = path.join(scratch, 'charts/atoll/files/crds/atoll.dev_workspaces.yaml');
      writeFileSync(
        copy,
        readFileSync(copy, 'utf8').replace('helm.sh/resource-policy: keep', 'helm.sh/resource-policy: delete'),
      );
      const r = run('bash', ['hack/sync-manifests.sh', '--check'], { env });
      expect(r.status).toBe(1);
      expect(r.stderr).toContain('charts/atoll/files/crds is out of date');
      expect(r.stderr).not.toContain('config/crd is out of date');
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });
});

describe('helm chart', () => {
  it('helm template works without flags (the Kubernetes version is checked against the cluster at install)', () => {
    const r = run(helm, ['template', 'atoll', 'charts/atoll']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('name: atoll-controller');
    expect(readFileSync(path.join(root, 'charts/atoll/Chart.yaml'), 'utf8')).not.toMatch(/^kubeVersion:/m);
  });

  it('passes helm lint --strict with default and non-default values', () => {
    const kubeVersion = pinnedVersions().KUBERNETES_VERSION!;
    for (const sets of [[], NON_DEFAULT_VALUES]) {
      const r = run(helm, [
        'lint',
        'charts/atoll',
        '--strict',
        '--kube-version',
        kubeVersion,
        ...sets.flatMap((s) => ['--set', s]),
      ]);
      expect(r.stdout + r.stderr).toContain('1 chart(s) linted, 0 chart(s) failed');
      expect(r.status).toBe(0);
    }
  });

  it('renders the operator with its defaults: 2 leader-electing controllers, local KMS, self-managed certificates', () => {
    const ms = docs(render());
    const controller = find(ms, 'Deployment', 'atoll-controller');
    expect((controller as unknown as { spec: { replicas: number } }).spec.replicas).toBe(2);
    expect(podSpec(controller).containers[0]!.args).toEqual(['controller']);
    expect(envOf(controller, 'ATOLL_LEADER_ELECT')).toBe('true');
    expect(envOf(controller, 'ATOLL_KMS_PROVIDER')).toBe('local');
    expect(envOf(controller, 'ATOLL_KMS_KEY_ID')).toBe('local/default');
    expect(envOf(controller, 'ATOLL_WEBHOOK_SERVICE')).toBe('atoll-webhook');
    expect(envOf(controller, 'ATOLL_WEBHOOK_CERTS')).toBe('self');
    // ADR 0029: the data-key cache outlives the 10-minute probe interval; a smaller young generation. ADR 0033: old generations capped.
    expect(envOf(controller, 'ATOLL_DEK_CACHE_IDLE')).toBe('30m');
    expect(envOf(controller, 'ATOLL_DEK_CACHE_MAX_AGE')).toBe('24h');
    expect(envOf(controller, 'NODE_OPTIONS')).toBe('--max-semi-space-size=2 --max-old-space-size=256');
    expect(envOf(find(ms, 'Deployment', 'atoll-gateway'), 'NODE_OPTIONS')).toBe('--max-old-space-size=256');
    expect(podSpec(find(ms, 'Deployment', 'atoll-gateway')).containers[0]!.args).toEqual(['gateway']);
    expect(
      ms
        .filter((m) => m.kind === 'CustomResourceDefinition')
        .map((m) => m.metadata.name)
        .sort(),
    ).toEqual(['externalconnections.atoll.dev', 'integrationtypes.atoll.dev', 'workspaces.atoll.dev']);
    for (const crd of ms.filter((m) => m.kind === 'CustomResourceDefinition')) {
      expect(crd.metadata.annotations?.['helm.sh/resource-policy']).toBe('keep');
    }
    expect(ms.filter((m) => m.kind === 'IntegrationType').map((m) => m.metadata.name)).toEqual(
      expect.arrayContaining(['http-api', 'postgresql', 'datadog', 's3']),
    );
    const mutating = find(ms, 'MutatingWebhookConfiguration', 'atoll-mutating') as unknown as {
      webhooks: { clientConfig: { service: { path: string } } }[];
    };
    const validating = find(ms, 'ValidatingWebhookConfiguration', 'atoll-validating') as unknown as typeof mutating;
    expect(mutating.webhooks.map((w) => w.clientConfig.service.path)).toEqual(['/mutate-externalconnection']);
    expect(validating.webhooks.map((w) => w.clientConfig.service.path)).toEqual([
      '/validate-externalconnection',
      '/validate-workspace',
    ]);
    expect(ms.some((m) => m.kind === 'Certificate' || m.kind === 'ServiceMonitor' || m.kind === 'PrometheusRule')).toBe(
      false,
    );
    expect(ms.filter((m) => m.kind === 'PodDisruptionBudget')).toHaveLength(2);
  });

  it('renders non-default values: cert-manager, ServiceMonitor, PrometheusRule, 3 replicas, aws-kms', () => {
    const ms = docs(render(NON_DEFAULT_VALUES));
    const controller = find(ms, 'Deployment', 'atoll-controller');
    expect((controller as unknown as { spec: { replicas: number } }).spec.replicas).toBe(3);
    expect(envOf(controller, 'ATOLL_KMS_PROVIDER')).toBe('aws-kms');
    expect(envOf(controller, 'ATOLL_KMS_KEY_ID')).toBe('alias/atoll');
    expect(envOf(controller, 'AWS_REGION')).toBe('eu-west-1');
    expect(envOf(controller, 'ATOLL_WEBHOOK_CERTS')).toBe('cert-manager');
    const cert = find(ms, 'Certificate', 'atoll-webhook') as unknown as {
      spec: { secretName: string; dnsNames: string[] };
    };
    expect(cert.spec.secretName).toBe('atoll-webhook-tls');
    expect(cert.spec.dnsNames).toContain(`atoll-webhook.${NS}.svc`);
    expect(
      find(ms, 'MutatingWebhookConfiguration', 'atoll-mutating').metadata.annotations?.[
        'cert-manager.io/inject-ca-from'
      ],
    ).toBe(`${NS}/atoll-webhook`);
    find(ms, 'ServiceMonitor', 'atoll');
    const rules = JSON.stringify(find(ms, 'PrometheusRule', 'atoll'));
    expect(rules).toContain('atoll_connections{ready=\\"false\\"} > 0');
    expect(rules).toContain('rate(atoll_kms_failures_total[5m])');
    expect(rules).toContain('atoll_probe_total{reason!=\\"Succeeded\\"}');
    // No local key ring with aws-kms: the gateway reads only the fingerprint key, and keeps its own serving certificate.
    expect(grants(rulesOf(find(ms, 'Role', 'atoll-gateway')))).toEqual([
      '/secrets/*:create',
      '/secrets/atoll-fingerprint-key:get',
      '/secrets/atoll-gateway-tls:get',
      '/secrets/atoll-gateway-tls:update',
    ]);
  });

  it('the gateway serves HTTPS in every mode; plain HTTP only by the explicit, warned opt-out', () => {
    const gatewayEnv = (sets: string[]) => {
      const ms = docs(render(sets));
      return { ms, gateway: find(ms, 'Deployment', 'atoll-gateway') };
    };
    const self = gatewayEnv([]);
    expect(envOf(self.gateway, 'ATOLL_GATEWAY_TLS_SELF_MANAGED')).toBe('atoll-gateway-tls');
    expect(envOf(self.gateway, 'ATOLL_GATEWAY_TLS_DNS_NAMES')).toContain(`atoll-gateway.${NS}.svc`);
    expect(envOf(self.gateway, 'ATOLL_GATEWAY_INSECURE_PLAINTEXT')).toBeUndefined();
    const managed = gatewayEnv(['gateway.tls.mode=cert-manager']);
    expect(envOf(managed.gateway, 'ATOLL_GATEWAY_TLS_CERT_FILE')).toBe('/etc/atoll/gateway-tls/tls.crt');
    expect(
      (find(managed.ms, 'Certificate', 'atoll-gateway') as unknown as { spec: { secretName: string } }).spec.secretName,
    ).toBe('atoll-gateway-tls');
    expect(
      grants(rulesOf(find(managed.ms, 'Role', 'atoll-gateway'))).filter(
        (g) => g.includes('gateway-tls') || g.includes('*:create'),
      ),
    ).toEqual([]);
    const own = gatewayEnv(['gateway.tls.mode=secret', 'gateway.tls.secretName=my-gateway-cert']);
    expect(JSON.stringify(podSpec(own.gateway))).toContain('my-gateway-cert');
    expect(helmTemplate(['gateway.tls.mode=secret']).stderr).toContain('secretName');
    const plain = gatewayEnv(['gateway.tls.insecurePlaintext=true']);
    expect(envOf(plain.gateway, 'ATOLL_GATEWAY_INSECURE_PLAINTEXT')).toBe('true');
    expect(envOf(plain.gateway, 'ATOLL_GATEWAY_TLS_SELF_MANAGED')).toBeUndefined();
  });

  it('renders vault-transit: per-component Vault roles, a projected token for the Vault audience, the CA as a ConfigMap', () => {
    const caFile = path.join(mkdtempSync(path.join(tmpdir(), 'atoll-vault-ca-')), 'ca.crt');
    writeFileSync(caFile, '-----BEGIN CERTIFICATE-----\nMIIBdummy\n-----END CERTIFICATE-----\n');
    const r = run(helm, [
      'template',
      'atoll',
      'charts/atoll',
      '--namespace',
      NS,
      '--kube-version',
      pinnedVersions().KUBERNETES_VERSION!,
      ...VAULT_VALUES.flatMap((s) => ['--set', s]),
      '--set-file',
      `kms.vault.caCert=${caFile}`,
    ]);
    expect(r.stderr).toBe('');
    const ms = docs(r.stdout);
    for (const [name, role] of [
      ['atoll-controller', 'atoll-controller'],
      ['atoll-gateway', 'atoll-gateway'],
    ] as const) {
      const d = find(ms, 'Deployment', name);
      expect(envOf(d, 'ATOLL_KMS_PROVIDER')).toBe('vault-transit');
      expect(envOf(d, 'ATOLL_KMS_KEY_ID')).toBe('transit/keys/atoll');
      expect(envOf(d, 'ATOLL_VAULT_ADDR')).toBe('https://vault.vault.svc:8200');
      expect(envOf(d, 'ATOLL_VAULT_NAMESPACE')).toBe('team-a');
      expect(envOf(d, 'ATOLL_VAULT_AUTH')).toBe('kubernetes');
      expect(envOf(d, 'ATOLL_VAULT_ROLE')).toBe(role);
      expect(envOf(d, 'ATOLL_VAULT_JWT_FILE')).toBe('/var/run/secrets/atoll/vault/token');
      expect(envOf(d, 'ATOLL_VAULT_CACERT')).toBe('/etc/atoll/vault-ca/ca.crt');
      const volumes = (
        podSpec(d) as unknown as {
          volumes: Array<{
            name: string;
            projected?: { sources: Array<{ serviceAccountToken?: { audience: string; path: string } }> };
          }>;
        }
      ).volumes;
      expect(volumes.find((v) => v.name === 'vault-auth')?.projected?.sources[0]?.serviceAccountToken).toMatchObject({
        audience: 'vault',
        path: 'token',
      });
    }
    expect(JSON.stringify(find(ms, 'ConfigMap', 'atoll-vault-ca'))).toContain('MIIBdummy');
    // No local key ring with vault-transit either (the gateway keeps only its fingerprint key and its self-managed TLS Secret).
    expect(grants(rulesOf(find(ms, 'Role', 'atoll-gateway')))).toEqual([
      '/secrets/*:create',
      '/secrets/atoll-fingerprint-key:get',
      '/secrets/atoll-gateway-tls:get',
      '/secrets/atoll-gateway-tls:update',
    ]);
  });

  it('renders the admission hardening: sealing budget and test window always, client-certificate authentication and webhookFrom when set', () => {
    const plain = find(docs(render()), 'Deployment', 'atoll-controller');
    expect(envOf(plain, 'ATOLL_SEALING_RATE_PER_MINUTE')).toBe('300');
    expect(envOf(plain, 'ATOLL_SEALING_BURST')).toBe('50');
    expect(envOf(plain, 'ATOLL_PROBE_TEST_MIN_INTERVAL_SECONDS')).toBe('10');
    expect(envOf(plain, 'ATOLL_DEK_CACHE_MAX_AGE')).toBe('24h');
    expect(envOf(plain, 'ATOLL_WEBHOOK_CLIENT_CA_FILE')).toBeUndefined();
    const ms = docs(
      render([
        'webhook.clientAuth.caConfigMap=apiserver-webhook-ca',
        'webhook.clientAuth.names={kube-apiserver-webhook-client}',
        'networkPolicy.webhookFrom[0].ipBlock.cidr=10.0.0.0/24',
      ]),
    );
    const controller = find(ms, 'Deployment', 'atoll-controller');
    expect(envOf(controller, 'ATOLL_WEBHOOK_CLIENT_CA_FILE')).toBe('/etc/atoll/webhook-client-ca/ca.crt');
    expect(envOf(controller, 'ATOLL_WEBHOOK_CLIENT_NAMES')).toBe('kube-apiserver-webhook-client');
    expect(JSON.stringify(podSpec(controller))).toContain('"configMap":{"name":"apiserver-webhook-ca"}');
    const policy = find(ms, 'NetworkPolicy', 'atoll-controller') as unknown as {
      spec: { ingress: Array<{ from?: unknown[]; ports: Array<{ port: number }> }> };
    };
    expect(policy.spec.ingress.find((r) => r.ports[0]!.port === 9443)?.from).toEqual([
      { ipBlock: { cidr: '10.0.0.0/24' } },
    ]);
  });

  it('runs every pod under the restricted Pod Security Standard', () => {
    for (const sets of [[], NON_DEFAULT_VALUES, ['console.enabled=true']]) {
      const deployments = docs(render(sets)).filter((m) => m.kind === 'Deployment');
      expect(deployments).toHaveLength(sets.includes('console.enabled=true') ? 3 : 2);
      for (const d of deployments) {
        const spec = podSpec(d);
        expect(spec.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
        for (const c of spec.containers) {
          expect(c.securityContext).toMatchObject({
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            runAsNonRoot: true,
            capabilities: { drop: ['ALL'] },
            seccompProfile: { type: 'RuntimeDefault' },
          });
        }
      }
    }
  });

  it('renders the console only when enabled: no ServiceAccount token, the cluster CA only, restricted, optional Ingress', () => {
    expect(docs(render()).some((m) => m.metadata.name === 'atoll-console')).toBe(false);
    const ms = docs(
      render(['console.enabled=true', 'console.ingress.enabled=true', 'console.ingress.host=atoll.example.com']),
    );
    const consoleDeployment = find(ms, 'Deployment', 'atoll-console');
    const spec = podSpec(consoleDeployment) as PodSpec & {
      automountServiceAccountToken?: boolean;
      serviceAccountName?: string;
      volumes?: Array<{ configMap?: { name: string }; secret?: unknown }>;
    };
    expect(spec.containers[0]!.args).toEqual(['console']);
    expect(spec.automountServiceAccountToken).toBe(false);
    expect(spec.serviceAccountName).toBeUndefined();
    expect(spec.volumes?.some((v) => v.secret !== undefined)).toBe(false);
    expect(spec.volumes?.some((v) => v.configMap?.name === 'kube-root-ca.crt')).toBe(true);
    expect(spec.containers[0]!.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(envOf(consoleDeployment, 'ATOLL_CONSOLE_CA_FILE')).toBe('/etc/atoll/kube-ca/ca.crt');
    find(ms, 'Service', 'atoll-console');
    find(ms, 'Ingress', 'atoll-console');
    find(ms, 'NetworkPolicy', 'atoll-console');
    // Nothing binds the console to a role: it has no permissions to bind.
    expect(
      ms.filter((m) => m.kind.endsWith('RoleBinding')).some((m) => JSON.stringify(m).includes('atoll-console')),
    ).toBe(false);
    const missingHost = helmTemplate(['console.enabled=true', 'console.ingress.enabled=true']);
    expect(missingHost.status).not.toBe(0);
    expect(missingHost.stderr).toContain('console.ingress.host is required');
  });

  it('values.schema.json rejects bad values with the offending key', () => {
    const bad = helmTemplate(['kms.provider=foo']);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain('/kms/provider');
    const noRegion = helmTemplate(['kms.provider=aws-kms', 'kms.keyId=alias/atoll']);
    expect(noRegion.status).not.toBe(0);
    expect(noRegion.stderr).toContain('/kms/aws/region');
    const vaultKey = helmTemplate([
      'kms.provider=vault-transit',
      'kms.keyId=alias/atoll',
      'kms.vault.address=https://vault:8200',
    ]);
    expect(vaultKey.status).not.toBe(0);
    expect(vaultKey.stderr).toContain('/kms/keyId');
    const vaultAddress = helmTemplate(['kms.provider=vault-transit', 'kms.keyId=transit/keys/atoll']);
    expect(vaultAddress.status).not.toBe(0);
    expect(vaultAddress.stderr).toContain('/kms/vault');
    const tokenSecret = helmTemplate([...VAULT_VALUES, 'kms.vault.auth.method=token']);
    expect(tokenSecret.status).not.toBe(0);
    expect(tokenSecret.stderr).toContain('/kms/vault/auth/token');
    const badReplicas = helmTemplate(['controller.replicas=0']);
    expect(badReplicas.status).not.toBe(0);
    expect(badReplicas.stderr).toContain('/controller/replicas');
  });

  it('ships the operator fence (admission policies) and the connection limit default', () => {
    const ms = docs(render());
    const policies = ms
      .filter((m) => m.kind === 'ValidatingAdmissionPolicy')
      .map((m) => m.metadata.name)
      .sort();
    expect(policies).toEqual([
      'atoll-operator-fence',
      'atoll-secret-role-bindings',
      'atoll-secret-role-bindings-need-workspace',
      'atoll-webhook-fence',
    ]);
    for (const name of policies) {
      const binding = find(ms, 'ValidatingAdmissionPolicyBinding', name) as unknown as {
        spec: { policyName: string; validationActions: string[] };
      };
      expect(binding.spec).toMatchObject({ policyName: name, validationActions: ['Deny'] });
      expect(
        (find(ms, 'ValidatingAdmissionPolicy', name) as unknown as { spec: { failurePolicy: string } }).spec
          .failurePolicy,
      ).toBe('Fail');
    }
    expect(JSON.stringify(find(ms, 'ValidatingAdmissionPolicy', 'atoll-operator-fence'))).toContain(
      `system:serviceaccount:${NS}:atoll-controller`,
    );
    expect(envOf(find(ms, 'Deployment', 'atoll-controller'), 'ATOLL_DEFAULT_MAX_CONNECTIONS')).toBe('500');
    expect(
      envOf(
        find(docs(render(['workspaces.defaultMaxConnections=2000'])), 'Deployment', 'atoll-controller'),
        'ATOLL_DEFAULT_MAX_CONNECTIONS',
      ),
    ).toBe('2000');
    expect(helmTemplate(['workspaces.defaultMaxConnections=0']).stderr).toContain('/workspaces/defaultMaxConnections');
    expect(envOf(find(ms, 'Deployment', 'atoll-controller'), 'ATOLL_WORKSPACE_RESYNC')).toBe('5m');
    expect(
      envOf(find(docs(render(['workspaces.resync=30m'])), 'Deployment', 'atoll-controller'), 'ATOLL_WORKSPACE_RESYNC'),
    ).toBe('30m');
    expect(helmTemplate(['workspaces.resync=often']).stderr).toContain('/workspaces/resync');
  });

  it('grants Secrets only through the two ClusterRoles that are never bound cluster-wide', () => {
    const ms = docs(render());
    const withSecrets = ms
      .filter((m) => m.kind === 'ClusterRole' && grantsSecrets(m))
      .map((m) => m.metadata.name)
      .sort();
    expect(withSecrets).toEqual(['atoll-gateway-secrets', 'atoll-operator-secrets']);
    const boundClusterWide = ms
      .filter((m) => m.kind === 'ClusterRoleBinding')
      .map((m) => (m as unknown as { roleRef: { name: string } }).roleRef.name);
    expect(boundClusterWide).not.toContain('atoll-operator-secrets');
    expect(boundClusterWide).not.toContain('atoll-gateway-secrets');
    expect(boundClusterWide).not.toContain('atoll-operator-quota');
    for (const m of ms.filter((x) => x.kind === 'ClusterRole')) {
      expect(
        Object.keys(m.metadata.labels ?? {}).filter((l) => l.startsWith('rbac.authorization.k8s.io/aggregate-to')),
      ).toEqual([]);
      for (const r of rulesOf(m)) expect(r.verbs).not.toContain('escalate');
    }
  });

  it('ships tenant ClusterRoles with exactly the rules of the Roles the Workspace reconciler writes', () => {
    const ms = docs(render());
    for (const role of TENANT_ROLES) {
      expect(grants(rulesOf(find(ms, 'ClusterRole', `atoll-tenant-${role}`)))).toEqual(grants(tenantRules(role)));
    }
  });
});

describe('kustomize (config/)', () => {
  it('config/default grants exactly the RBAC the chart grants', () => {
    const key = (m: Manifest) => `${m.kind}/${m.metadata.name}`;
    const rbac = (ms: Manifest[]) =>
      Object.fromEntries(
        ms
          .filter((m) => ['ClusterRole', 'Role', 'ClusterRoleBinding', 'RoleBinding'].includes(m.kind))
          .map((m) => [
            key(m),
            {
              rules: (m as { rules?: unknown }).rules ?? null,
              roleRef: (m as { roleRef?: unknown }).roleRef ?? null,
              subjects: (m as { subjects?: unknown }).subjects ?? null,
            },
          ]),
      );
    const kustomized = rbac(docs(mustRun('kubectl', ['kustomize', 'config/default'])));
    expect(Object.keys(kustomized).length).toBeGreaterThan(10);
    expect(kustomized).toEqual(rbac(docs(render())));
  });

  it('config/overlays/console adds the console to config/default with no RBAC of its own', () => {
    const base = docs(mustRun('kubectl', ['kustomize', 'config/default']));
    const overlay = docs(mustRun('kubectl', ['kustomize', 'config/overlays/console']));
    expect(
      overlay
        .filter((m) => !base.some((b) => b.kind === m.kind && b.metadata.name === m.metadata.name))
        .map((m) => `${m.kind}/${m.metadata.name}`)
        .sort(),
    ).toEqual(['Deployment/atoll-console', 'NetworkPolicy/atoll-console', 'Service/atoll-console']);
    const spec = podSpec(find(overlay, 'Deployment', 'atoll-console')) as PodSpec & {
      automountServiceAccountToken?: boolean;
    };
    expect(spec.automountServiceAccountToken).toBe(false);
    expect(find(overlay, 'Deployment', 'atoll-console').metadata.namespace).toBe(NS);
  });

  it('config/default ships the same admission policies as the chart', () => {
    const policyKinds = ['ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding'];
    const specs = (ms: Manifest[]) =>
      Object.fromEntries(
        ms
          .filter((m) => policyKinds.includes(m.kind))
          .map((m) => [`${m.kind}/${m.metadata.name}`, { namespace: m.metadata.namespace ?? null, spec: m.spec }]),
      );
    const kustomized = specs(docs(mustRun('kubectl', ['kustomize', 'config/default'])));
    expect(Object.keys(kustomized)).toHaveLength(8);
    expect(kustomized).toEqual(specs(docs(render())));
  });

  it('config/default puts namespaced objects in atoll-system and leaves the cluster-scoped built-in types alone', () => {
    const ms = docs(mustRun('kubectl', ['kustomize', 'config/default']));
    expect(ms.filter((m) => m.kind === 'IntegrationType').every((m) => m.metadata.namespace === undefined)).toBe(true);
    expect(find(ms, 'Deployment', 'atoll-controller').metadata.namespace).toBe(NS);
    expect(find(ms, 'Namespace', NS).metadata.labels?.['pod-security.kubernetes.io/enforce']).toBe('restricted');
  });
});

describe('against a real API server', () => {
  let cp: ControlPlane;
  let kubeconfig: string;
  const kubectl = (args: string[], input?: string) => run('kubectl', ['--kubeconfig', kubeconfig, ...args], { input });
  const mustKubectl = (args: string[], input?: string) => {
    const r = kubectl(args, input);
    if (r.status !== 0) throw new Error(`kubectl ${args.join(' ')} failed:\n${r.stderr}`);
    return r.stdout;
  };

  /** SubjectAccessReview as the admin: may `user` (in `groups`) do `verb` on `resource`? */
  async function can(
    user: string,
    groups: string[],
    verb: string,
    resource: string,
    namespace = '',
    opts: { group?: string; name?: string; subresource?: string } = {},
  ): Promise<boolean> {
    const review = await cp
      .adminClient()
      .request<{ status: { allowed: boolean } }>('POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SubjectAccessReview',
        spec: {
          user,
          groups,
          resourceAttributes: {
            verb,
            resource,
            group: opts.group ?? '',
            namespace,
            name: opts.name,
            subresource: opts.subresource,
          },
        },
      });
    return review.status.allowed;
  }
  const atoll = { group: 'atoll.dev' };

  function roleBinding(namespace: string, name: string, clusterRole: string, subject: Record<string, string>): string {
    return JSON.stringify({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name, namespace },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: clusterRole },
      subjects: [subject],
    });
  }
  const asController = ['--as', CONTROLLER, ...SA_GROUPS.flatMap((g) => ['--as-group', g])];

  beforeAll(async () => {
    cp = await ControlPlane.start({ controllerManager: false });
    kubeconfig = cp.writeKubeconfigFor('admin', ['system:masters']);
    // CRDs for real, so that the custom resources can be dry-run.
    mustKubectl(['apply', '--server-side', '-f', 'crds/']);
    mustKubectl(['apply', '--server-side', '-f', '-'], stubCrds());
    mustKubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd', '--all']);
    // `warn: restricted` makes the API server report Pod Security violations of workloads.
    mustKubectl(
      ['apply', '--server-side', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: {
          name: NS,
          labels: {
            'pod-security.kubernetes.io/enforce': 'restricted',
            'pod-security.kubernetes.io/warn': 'restricted',
          },
        },
      }),
    );
  }, 180_000);

  afterAll(async () => {
    await cp?.stop();
  });

  it.each([
    ['default values', [] as string[]],
    ['non-default values', NON_DEFAULT_VALUES],
    ['vault-transit values', VAULT_VALUES],
  ])('accepts the chart rendered with %s (server-side dry-run, no Pod Security warning)', (_label, sets) => {
    const r = kubectl(['apply', '--server-side', '--dry-run=server', '-f', '-'], render(sets));
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('deployment.apps/atoll-controller serverside-applied (server dry run)');
    expect(r.stdout).toContain('integrationtype.atoll.dev/postgresql serverside-applied (server dry run)');
  });

  it('helm install --dry-run=server against the API server accepts the chart and prints its NOTES', () => {
    // The CRDs exist already (applied above, not by helm), as after a kustomize install of config/crd.
    const r = run(helm, [
      'install',
      'atoll',
      'charts/atoll',
      '--namespace',
      NS,
      '--kubeconfig',
      kubeconfig,
      '--dry-run=server',
      '--set',
      'crds.install=false',
    ]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('NOTES:');
    expect(r.stdout).toContain(`kubectl -n ${NS} rollout status deploy/atoll-controller`);
    expect(r.stdout).toContain('KMS provider: local (default key local/default)');
    expect(r.stdout).toContain('WARNING: the local provider keeps the key next to the lock.');
    expect(r.stdout).toContain('anyone holding an etcd\n  snapshot or backup can decrypt');
  });

  it('warns in NOTES about the local key ring only when kms.provider is local', () => {
    const aws = run(helm, [
      'install',
      'atoll',
      'charts/atoll',
      '--namespace',
      NS,
      '--kubeconfig',
      kubeconfig,
      '--dry-run=server',
      '--set',
      'crds.install=false',
      ...NON_DEFAULT_VALUES.filter((v) => !v.startsWith('webhook.certManager') && !v.startsWith('metrics.')).flatMap(
        (v) => ['--set', v],
      ),
    ]);
    expect(aws.stderr).toBe('');
    expect(aws.stdout).toContain('KMS provider: aws-kms');
    expect(aws.stdout).not.toContain('WARNING: the local provider');
  });

  it('accepts kubectl kustomize config/default (server-side dry-run, no Pod Security warning)', () => {
    const r = kubectl(
      ['apply', '--server-side', '--dry-run=server', '-f', '-'],
      mustRun('kubectl', ['kustomize', 'config/default']),
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(
      'mutatingwebhookconfiguration.admissionregistration.k8s.io/atoll-mutating serverside-applied (server dry run)',
    );
  });

  it('docs/audit-policy.yaml loads, and logs an ExternalConnection request carrying a plaintext value without its body', async () => {
    // A second kube-apiserver on the same etcd (as in HA), with the audit policy.
    const dir = mkdtempSync(path.join(tmpdir(), 'atoll-audit-'));
    const port = await freePort();
    const pki = (f: string) => path.join(cp.dir, 'pki', f);
    const auditLog = path.join(dir, 'audit.log');
    const proc = spawn(
      cp.binaries.kubeApiserver,
      [
        '--etcd-servers',
        cp.etcdEndpoint,
        '--bind-address',
        '127.0.0.1',
        '--advertise-address',
        '127.0.0.1',
        '--secure-port',
        String(port),
        '--tls-cert-file',
        pki('apiserver.crt'),
        '--tls-private-key-file',
        pki('apiserver.key'),
        '--client-ca-file',
        pki('ca.crt'),
        '--authorization-mode',
        'RBAC',
        '--service-account-issuer',
        'https://kubernetes.default.svc.cluster.local',
        '--service-account-key-file',
        pki('sa.pub'),
        '--service-account-signing-key-file',
        pki('sa.key'),
        '--service-cluster-ip-range',
        '10.0.0.0/24',
        '--endpoint-reconciler-type',
        'none',
        '--enable-priority-and-fairness=false',
        '--cert-dir',
        path.join(dir, 'certs'),
        '--audit-policy-file',
        path.join(root, 'docs', 'audit-policy.yaml'),
        '--audit-log-path',
        auditLog,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    proc.stderr.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-20_000);
    });
    try {
      const server = ['--server', `https://127.0.0.1:${port}`];
      await waitFor(
        'audited kube-apiserver',
        async () => {
          if (proc.exitCode !== null) throw new Error(`kube-apiserver exited: ${stderr.slice(-2000)}`);
          return kubectl([...server, 'get', '--raw', '/readyz']).status === 0;
        },
        90_000,
        500,
      );
      mustKubectl(['create', 'namespace', 'audit-a']);
      const sentinel = 'plaintext-sentinel-4f1c9d2e7a';
      const conn = {
        apiVersion: 'atoll.dev/v1alpha1',
        kind: 'ExternalConnection',
        metadata: { name: 'audited', namespace: 'audit-a' },
        spec: {
          type: 'http-api',
          settings: { baseURL: 'https://api.example.com' },
          credentials: { token: { value: sentinel } },
        },
      };
      // Rejected (no Workspace, no webhook here, and the CRD refuses a stored `value`), but audited either way.
      kubectl([...server, 'create', '-f', '-'], JSON.stringify(conn));
      let events: {
        level: string;
        objectRef?: { resource?: string; name?: string };
        requestObject?: unknown;
        stage: string;
      }[] = [];
      await waitFor(
        'audit event of the ExternalConnection create',
        async () => {
          if (!existsSync(auditLog)) return false;
          events = readFileSync(auditLog, 'utf8')
            .trim()
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as (typeof events)[number]);
          return events.some((e) => e.objectRef?.resource === 'externalconnections' && e.stage === 'ResponseComplete');
        },
        30_000,
        250,
      );
      expect(readFileSync(auditLog, 'utf8')).not.toContain(sentinel);
      const connEvents = events.filter((e) => e.objectRef?.resource === 'externalconnections');
      expect(connEvents.length).toBeGreaterThan(0);
      for (const e of connEvents) {
        expect(e.level).toBe('Metadata');
        expect(e.requestObject).toBeUndefined();
      }
    } finally {
      const exited = new Promise((resolve) => proc.once('exit', resolve));
      proc.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('with the rendered RBAC really applied', () => {
    beforeAll(() => {
      const rbacKinds = ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'];
      const rbac = docs(render()).filter((m) => rbacKinds.includes(m.kind));
      mustKubectl(
        ['apply', '--server-side', '-f', '-'],
        JSON.stringify({ apiVersion: 'v1', kind: 'List', items: rbac }),
      );
      for (const ns of ['tenant-a', 'tenant-b']) mustKubectl(['create', 'namespace', ns]);
    });

    it('the controller cannot read Secrets cluster-wide or in other namespaces', async () => {
      for (const verb of ['get', 'list', 'watch']) {
        expect(await can(CONTROLLER, SA_GROUPS, verb, 'secrets', 'default')).toBe(false);
        expect(await can(CONTROLLER, SA_GROUPS, verb, 'secrets')).toBe(false);
        expect(await can(CONTROLLER, SA_GROUPS, verb, 'secrets', 'tenant-a')).toBe(false);
        expect(await can(CONTROLLER, SA_GROUPS, verb, 'secrets', 'kube-system')).toBe(false);
      }
    });

    it('the controller reads and writes Secrets in its own namespace and holds its Lease', async () => {
      for (const verb of ['get', 'list', 'watch', 'create', 'update', 'patch']) {
        expect(await can(CONTROLLER, SA_GROUPS, verb, 'secrets', NS)).toBe(true);
      }
      expect(
        await can(CONTROLLER, SA_GROUPS, 'update', 'leases', NS, {
          group: 'coordination.k8s.io',
          name: 'atoll-controller',
        }),
      ).toBe(true);
      expect(
        await can(CONTROLLER, SA_GROUPS, 'update', 'leases', NS, {
          group: 'coordination.k8s.io',
          name: 'kube-scheduler',
        }),
      ).toBe(false);
      expect(
        await can(CONTROLLER, SA_GROUPS, 'patch', 'mutatingwebhookconfigurations', '', {
          group: 'admissionregistration.k8s.io',
          name: 'atoll-mutating',
        }),
      ).toBe(true);
      expect(
        await can(CONTROLLER, SA_GROUPS, 'patch', 'mutatingwebhookconfigurations', '', {
          group: 'admissionregistration.k8s.io',
          name: 'other',
        }),
      ).toBe(false);
    });

    it('the controller can grant itself Secrets of a workspace namespace only via atoll-operator-secrets, without escalate', async () => {
      // It really creates the RoleBinding, as the Workspace reconciler does (needs `bind`).
      mustKubectl(
        ['create', ...asController, '-f', '-'],
        roleBinding('tenant-a', 'atoll-operator-secrets', 'atoll-operator-secrets', {
          kind: 'ServiceAccount',
          name: 'atoll-controller',
          namespace: NS,
        }),
      );
      for (const verb of ['get', 'list', 'watch', 'create', 'update', 'delete']) {
        expect(await can(CONTROLLER, SA_GROUPS, verb, 'secrets', 'tenant-a')).toBe(true);
      }
      expect(await can(CONTROLLER, SA_GROUPS, 'get', 'secrets', 'tenant-b')).toBe(false);
      expect(await can(CONTROLLER, SA_GROUPS, 'get', 'secrets')).toBe(false);
      // Binding anything else (here cluster-admin, namespace-wide) is refused: no escalate.
      const refused = kubectl(
        ['create', ...asController, '-f', '-'],
        roleBinding('tenant-a', 'sneaky', 'cluster-admin', {
          kind: 'ServiceAccount',
          name: 'atoll-controller',
          namespace: NS,
        }),
      );
      expect(refused.status).not.toBe(0);
      expect(refused.stderr).toMatch(/forbidden/i);
    });

    it('the controller writes the tenant Roles and RoleBindings as the Workspace reconciler does, without escalate', async () => {
      const controller = cp.clientFor(CONTROLLER, SA_GROUPS);
      for (const role of TENANT_ROLES) {
        const name = tenantRoleName(role);
        await controller.apply(Roles, { metadata: { name, namespace: 'tenant-b' }, rules: tenantRules(role) });
        await controller.apply(RoleBindings, {
          metadata: { name, namespace: 'tenant-b' },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
          subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: `${role}-of-b` }],
        });
      }
      const groups = ['system:authenticated'];
      expect(await can('editor-of-b', groups, 'create', 'externalconnections', 'tenant-b', atoll)).toBe(true);
      expect(await can('admin-of-b', groups, 'get', 'secrets', 'tenant-b')).toBe(false);
      // A Role granting what the controller lacks is refused: it cannot mint Secret access.
      await expect(
        controller.apply(Roles, {
          metadata: { name: 'mint-secrets', namespace: 'tenant-b' },
          rules: [{ apiGroups: [''], resources: ['secrets'], verbs: ['get'] }],
        }),
      ).rejects.toMatchObject({ status: 403 });
    });

    it('the controller and gateway, as themselves, load the fingerprint key and the local key ring', async () => {
      const controller = cp.clientFor(CONTROLLER, SA_GROUPS);
      const gateway = cp.clientFor(GATEWAY, SA_GROUPS);
      const key = await loadFingerprintKey(controller, NS);
      expect(await loadFingerprintKey(gateway, NS)).toEqual(key);
      expect(await new SecretKeyRingStore(gateway, NS).load()).toBeUndefined();
      // Nothing in a namespace where no RoleBinding grants it.
      await expect(loadFingerprintKey(gateway, 'tenant-b')).rejects.toMatchObject({ status: 403 });
    });

    it("the controller declares its webhooks over the chart's without duplicating or changing them, and caBundle survives a re-sync", async () => {
      const chartWebhooks = docs(render()).filter((m) => m.kind.endsWith('WebhookConfiguration'));
      const applyChart = () =>
        mustKubectl(
          ['apply', '--server-side', '-f', '-'],
          JSON.stringify({ apiVersion: 'v1', kind: 'List', items: chartWebhooks }),
        );
      applyChart();
      try {
        const controller = cp.clientFor(CONTROLLER, SA_GROUPS);
        const cert = await ensureServingCertificate(controller, NS, {
          dnsNames: [`atoll-webhook.${NS}.svc`, `atoll-webhook.${NS}.svc.cluster.local`],
          ipAddresses: [],
        });
        await registerWebhooks(controller, {
          caPem: cert.caPem,
          service: { namespace: NS, name: 'atoll-webhook', port: 443 },
        });
        applyChart(); // what Argo CD self-heal or a helm upgrade does next
        const caBundle = Buffer.from(cert.caPem).toString('base64');
        for (const [kind, name] of [
          ['mutatingwebhookconfiguration', 'atoll-mutating'],
          ['validatingwebhookconfiguration', 'atoll-validating'],
        ] as const) {
          const live = JSON.parse(mustKubectl(['get', kind, name, '-o', 'json'])) as {
            webhooks: { clientConfig: { caBundle?: string } }[];
          };
          const chart = chartWebhooks.find((m) => m.metadata.name === name) as unknown as { webhooks: unknown[] };
          expect(live.webhooks).toMatchObject(chart.webhooks);
          for (const w of live.webhooks) expect(w.clientConfig.caBundle).toBe(caBundle);
        }
      } finally {
        mustKubectl([
          'delete',
          'mutatingwebhookconfiguration/atoll-mutating',
          'validatingwebhookconfiguration/atoll-validating',
        ]);
      }
    });

    it("the gateway reads only the local key ring in its namespace, and a workspace's Secrets once bound there", async () => {
      expect(await can(GATEWAY, SA_GROUPS, 'get', 'secrets', NS, { name: 'atoll-local-kms' })).toBe(true);
      expect(await can(GATEWAY, SA_GROUPS, 'get', 'secrets', NS, { name: 'atoll-webhook-tls' })).toBe(false);
      expect(await can(GATEWAY, SA_GROUPS, 'get', 'secrets', 'tenant-a')).toBe(false);
      expect(await can(GATEWAY, SA_GROUPS, 'create', 'tokenreviews', '', { group: 'authentication.k8s.io' })).toBe(
        true,
      );
      expect(
        await can(GATEWAY, SA_GROUPS, 'create', 'subjectaccessreviews', '', { group: 'authorization.k8s.io' }),
      ).toBe(true);
      mustKubectl(
        ['create', ...asController, '-f', '-'],
        roleBinding('tenant-a', 'atoll-gateway-secrets', 'atoll-gateway-secrets', {
          kind: 'ServiceAccount',
          name: 'atoll-gateway',
          namespace: NS,
        }),
      );
      expect(await can(GATEWAY, SA_GROUPS, 'get', 'secrets', 'tenant-a')).toBe(true);
      expect(await can(GATEWAY, SA_GROUPS, 'create', 'secrets', 'tenant-a')).toBe(false);
      expect(await can(GATEWAY, SA_GROUPS, 'get', 'secrets', 'tenant-b')).toBe(false);
    });

    it("the gateway may write a connection's status (status.usage) and nothing else of it", async () => {
      expect(
        await can(GATEWAY, SA_GROUPS, 'update', 'externalconnections', 'tenant-a', { ...atoll, subresource: 'status' }),
      ).toBe(true);
      expect(
        await can(GATEWAY, SA_GROUPS, 'patch', 'externalconnections', 'tenant-a', { ...atoll, subresource: 'status' }),
      ).toBe(false);
      for (const verb of ['create', 'update', 'patch', 'delete'])
        expect(await can(GATEWAY, SA_GROUPS, verb, 'externalconnections', 'tenant-a', atoll)).toBe(false);
      expect(
        await can(GATEWAY, SA_GROUPS, 'update', 'workspaces', 'tenant-a', { ...atoll, subresource: 'status' }),
      ).toBe(false);
    });

    it('tenant roles, bound by the controller, never read Secrets and stay in their namespace', async () => {
      const users = { viewer: 'vera', editor: 'ed', admin: 'ada' } as const;
      for (const [role, user] of Object.entries(users)) {
        mustKubectl(
          ['create', ...asController, '-f', '-'],
          roleBinding('tenant-a', `atoll-${role}`, `atoll-tenant-${role}`, {
            apiGroup: 'rbac.authorization.k8s.io',
            kind: 'User',
            name: user,
          }),
        );
      }
      const groups = ['system:authenticated'];
      for (const user of Object.values(users)) {
        for (const verb of ['get', 'list', 'watch'])
          expect(await can(user, groups, verb, 'secrets', 'tenant-a')).toBe(false);
        expect(await can(user, groups, 'get', 'externalconnections', 'tenant-a', atoll)).toBe(true);
        expect(await can(user, groups, 'get', 'workspaces', 'tenant-a', atoll)).toBe(true);
        expect(await can(user, groups, 'update', 'workspaces', 'tenant-a', atoll)).toBe(false);
        expect(await can(user, groups, 'get', 'externalconnections', 'tenant-b', atoll)).toBe(false);
        expect(await can(user, groups, 'use', 'externalconnections', 'tenant-a', atoll)).toBe(false);
        expect(await can(user, groups, 'list', 'integrationtypes', '', atoll)).toBe(true);
      }
      expect(await can(users.viewer, groups, 'create', 'externalconnections', 'tenant-a', atoll)).toBe(false);
      expect(await can(users.editor, groups, 'create', 'externalconnections', 'tenant-a', atoll)).toBe(true);
      expect(
        await can(users.editor, groups, 'create', 'rolebindings', 'tenant-a', { group: 'rbac.authorization.k8s.io' }),
      ).toBe(false);

      // The tenant admin grants a workload `use`, and nothing more.
      const asAdmin = ['--as', users.admin, '--as-group', 'system:authenticated'];
      mustKubectl(
        ['create', ...asAdmin, '-f', '-'],
        roleBinding('tenant-a', 'app-uses-connections', 'atoll-connection-user', {
          kind: 'ServiceAccount',
          name: 'app',
          namespace: 'tenant-a',
        }),
      );
      const app = 'system:serviceaccount:tenant-a:app';
      const appGroups = ['system:serviceaccounts', 'system:serviceaccounts:tenant-a', 'system:authenticated'];
      expect(
        await can(app, appGroups, 'use', 'externalconnections', 'tenant-a', { ...atoll, name: 'billing-api' }),
      ).toBe(true);
      expect(await can(app, appGroups, 'use', 'externalconnections', 'tenant-b', atoll)).toBe(false);
      expect(await can(app, appGroups, 'get', 'secrets', 'tenant-a')).toBe(false);
      const secretsGrab = kubectl(
        ['create', ...asAdmin, '-f', '-'],
        roleBinding('tenant-a', 'grab', 'atoll-operator-secrets', {
          apiGroup: 'rbac.authorization.k8s.io',
          kind: 'User',
          name: users.admin,
        }),
      );
      expect(secretsGrab.status).not.toBe(0);
      expect(secretsGrab.stderr).toMatch(/forbidden/i);
      expect(
        await can(users.admin, groups, 'create', 'rolebindings', 'tenant-b', { group: 'rbac.authorization.k8s.io' }),
      ).toBe(false);
    });
  });
});

/** Minimal stand-ins for the cert-manager and Prometheus Operator CRDs, so their objects can be dry-run. */
function stubCrds(): string {
  const crd = (group: string, kind: string, plural: string) => ({
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.${group}` },
    spec: {
      group,
      scope: 'Namespaced',
      names: { kind, plural, singular: kind.toLowerCase(), listKind: `${kind}List` },
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
        },
      ],
    },
  });
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'List',
    items: [
      crd('cert-manager.io', 'Certificate', 'certificates'),
      crd('cert-manager.io', 'Issuer', 'issuers'),
      crd('monitoring.coreos.com', 'ServiceMonitor', 'servicemonitors'),
      crd('monitoring.coreos.com', 'PrometheusRule', 'prometheusrules'),
    ],
  });
}
