import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { packageRoot, pinnedVersions } from '../../src/dev/binaries.js';

/**
 * Red team (issue 15), the chart with kms.provider=vault-transit: a
 * compromised gateway must hold a Vault token that can only unwrap, and the
 * Vault token must never be configured to cross the network in clear text.
 */
const root = packageRoot();
const VAULT = [
  'kms.provider=vault-transit',
  'kms.keyId=transit/keys/atoll',
  'kms.vault.address=https://vault.vault.svc:8200',
];
const TOKEN_AUTH = [
  ...VAULT,
  'kms.vault.auth.method=token',
  'kms.vault.auth.token.secretName=atoll-controller-vault-token',
];
let helm = '';

function template(sets: string[]) {
  const args = [
    'template',
    'atoll',
    'charts/atoll',
    '--namespace',
    'atoll-system',
    '--kube-version',
    pinnedVersions().KUBERNETES_VERSION!,
    ...sets.flatMap((s) => ['--set', s]),
  ];
  return spawnSync(helm, args, { cwd: root, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
}

interface Deployment {
  kind: string;
  metadata: { name: string };
  spec: { template: { spec: { volumes?: { name: string; secret?: { secretName: string } }[] } } };
}

function vaultTokenSecret(stdout: string, deployment: string): string | undefined {
  const d = parseAllDocuments(stdout)
    .map((doc) => doc.toJSON() as Deployment | null)
    .find((m) => m?.kind === 'Deployment' && m.metadata.name === deployment);
  if (!d) throw new Error(`Deployment ${deployment} not rendered`);
  return d.spec.template.spec.volumes?.find((v) => v.name === 'vault-auth')?.secret?.secretName;
}

beforeAll(() => {
  const out = execFileSync('bash', [path.join(root, 'hack', 'build-helm.sh')], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  helm = out.trim().split('\n').pop()!;
}, 900_000);

describe('attack: the vault-transit chart', () => {
  it('with token auth the gateway does not get the controller Vault token (BROKE: both mounted one Secret)', () => {
    // Without a Secret of its own for the gateway, the chart refuses to render, naming the value.
    const shared = template(TOKEN_AUTH);
    expect(shared.status).not.toBe(0);
    expect(shared.stderr).toMatch(/gatewaySecretName/);
    const same = template([...TOKEN_AUTH, 'kms.vault.auth.token.gatewaySecretName=atoll-controller-vault-token']);
    expect(same.status).not.toBe(0);
    expect(same.stderr).toContain('kms.vault.auth.token.gatewaySecretName must differ from secretName');

    const r = template([...TOKEN_AUTH, 'kms.vault.auth.token.gatewaySecretName=atoll-gateway-vault-token']);
    expect(r.stderr).toBe('');
    expect(vaultTokenSecret(r.stdout, 'atoll-controller')).toBe('atoll-controller-vault-token');
    expect(vaultTokenSecret(r.stdout, 'atoll-gateway')).toBe('atoll-gateway-vault-token');
  });

  it('a plain http:// Vault address is refused unless it is loopback (BROKE: accepted)', () => {
    const r = template([...VAULT, 'kms.vault.address=http://vault.vault.svc:8200']);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('/kms/vault/address');
    expect(template([...VAULT, 'kms.vault.address=http://127.0.0.1:8200']).status).toBe(0);
  });

  it('with Kubernetes auth each pod projects its own token for the Vault audience only (held)', () => {
    const r = template([...VAULT, 'kms.vault.auth.kubernetes.audience=vault']);
    expect(r.status).toBe(0);
    for (const name of ['atoll-controller', 'atoll-gateway']) {
      const d = parseAllDocuments(r.stdout)
        .map(
          (doc) =>
            doc.toJSON() as { kind: string; metadata: { name: string } } & {
              spec: {
                template: {
                  spec: {
                    volumes: {
                      name: string;
                      projected?: { sources: { serviceAccountToken?: { audience: string } }[] };
                    }[];
                  };
                };
              };
            },
        )
        .find((m) => m?.kind === 'Deployment' && m.metadata.name === name)!;
      const sources = d.spec.template.spec.volumes.find((v) => v.name === 'vault-auth')?.projected?.sources ?? [];
      expect(sources.map((s) => s.serviceAccountToken?.audience)).toEqual(['vault']);
    }
  });
});
