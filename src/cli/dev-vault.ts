import path from 'node:path';
import { writeFileSync } from 'node:fs';
import type { KubeClient } from '../kube/client.js';
import type { ControlPlane } from '../dev/control-plane.js';
import { OPERATOR_NAMESPACE } from '../dev/embedded.js';
import {
  createTransitKey,
  enableKubernetesAuth,
  kubernetesRole,
  serviceAccountTokenFile,
  startVault,
  transitPolicy,
  vaultBinary,
  type VaultServer,
} from '../dev/vault.js';
import { UsageError } from './args.js';

/** What `atoll dev --kms vault-transit` runs beside the control plane. */
export interface DevVault {
  server: VaultServer;
  keyId: string;
  /** ATOLL_* settings for one component (its own Vault role and ServiceAccount token). */
  env(component: 'controller' | 'gateway'): Record<string, string>;
}

const AUDIENCE = 'vault';

/**
 * A Vault dev server on loopback set up the way docs/reference/kms-vault-transit.md
 * tells a platform team to: a derived Transit key, the least-privilege
 * policies, the Kubernetes auth method reviewing tokens with the dev API
 * server, and one role per component. Needs a vault binary (VAULT_BINARY or
 * `bash hack/build-vault.sh`); it is not built implicitly because a cold
 * build takes a long time.
 */
export async function startDevVault(
  cp: ControlPlane,
  client: KubeClient,
  dir: string,
  say: (line: string) => void,
): Promise<DevVault> {
  try {
    vaultBinary({ build: false });
  } catch {
    throw new UsageError(
      'atoll dev --kms vault-transit needs a vault binary: run `bash hack/build-vault.sh` or set VAULT_BINARY',
    );
  }
  say('starting a Vault dev server (Transit, Kubernetes auth against this control plane)');
  const server = await startVault();
  try {
    const keyId = await createTransitKey(server, 'atoll');
    await server.api('PUT', 'sys/policies/acl/atoll-controller', { policy: transitPolicy(keyId, 'controller') });
    await server.api('PUT', 'sys/policies/acl/atoll-gateway', { policy: transitPolicy(keyId, 'gateway') });
    await enableKubernetesAuth(server, client, { url: cp.server, caPem: cp.ca.certPem });
    const jwt: Record<string, string> = {};
    for (const component of ['controller', 'gateway'] as const) {
      const sa = `atoll-${component}`;
      await kubernetesRole(server, sa, {
        namespace: OPERATOR_NAMESPACE,
        serviceAccount: sa,
        audience: AUDIENCE,
        policies: [sa],
      });
      // In a cluster the kubelet projects this token; here it is requested once for a week.
      jwt[component] = await serviceAccountTokenFile(
        client,
        OPERATOR_NAMESPACE,
        sa,
        AUDIENCE,
        7 * 24 * 3600,
        path.join(dir, `vault-jwt-${component}`),
      );
    }
    writeFileSync(path.join(dir, 'vault-root-token'), server.rootToken, { mode: 0o600 });
    return {
      server,
      keyId,
      env: (component) => ({
        ATOLL_KMS_PROVIDER: 'vault-transit',
        ATOLL_KMS_KEY_ID: keyId,
        ATOLL_VAULT_ADDR: server.address,
        ATOLL_VAULT_CACERT: server.caFile!,
        ATOLL_VAULT_AUTH: 'kubernetes',
        ATOLL_VAULT_ROLE: `atoll-${component}`,
        ATOLL_VAULT_JWT_FILE: jwt[component]!,
      }),
    };
  } catch (err) {
    await server.destroy();
    throw err;
  }
}
