import path from 'node:path';
import { applyManifests, readManifests } from '../cli/install.js';
import { loadOperatorConfig, type OperatorConfig } from '../config/operator-config.js';
import type { KubeClient } from '../kube/client.js';
import { MutatingWebhookConfigurations, Namespaces, ValidatingWebhookConfigurations } from '../kube/resources.js';
import { MUTATING_WEBHOOK, VALIDATING_WEBHOOK } from '../webhooks/registration.js';
import { packageRoot } from './binaries.js';

/** Where the operator runs in `atoll dev`, tests and benchmarks. */
export const OPERATOR_NAMESPACE = 'atoll-system';

/**
 * Installs what must exist before the operator starts: its namespace, the
 * CRDs, RBAC, the admission policies that fence the operator, and built-in types.
 */
export async function installAtoll(client: KubeClient, root = packageRoot()): Promise<void> {
  await client.apply(Namespaces, { metadata: { name: OPERATOR_NAMESPACE } });
  await applyManifests(
    client,
    readManifests([
      path.join(root, 'crds'),
      path.join(root, 'config', 'rbac'),
      path.join(root, 'config', 'policy'),
      path.join(root, 'config', 'types'),
    ]),
    { namespace: OPERATOR_NAMESPACE },
  );
}

/** Empty webhook configurations the operator then fills in (it may patch, not create, them). */
export async function precreateWebhookConfigurations(client: KubeClient): Promise<void> {
  await client.apply(MutatingWebhookConfigurations, { metadata: { name: MUTATING_WEBHOOK }, webhooks: [] } as never, {
    fieldManager: 'atoll-install',
  });
  await client.apply(
    ValidatingWebhookConfigurations,
    { metadata: { name: VALIDATING_WEBHOOK }, webhooks: [] } as never,
    { fieldManager: 'atoll-install' },
  );
}

/**
 * Configuration for an operator running outside the cluster on loopback:
 * the API server calls the webhook by URL, and ports are picked by the OS
 * (port 0), so any number of instances can run side by side.
 */
export function loopbackOperatorConfig(
  overrides: Record<string, string | undefined> = {},
  env: Record<string, string | undefined> = {},
): OperatorConfig {
  return loadOperatorConfig(env, {
    ATOLL_NAMESPACE: OPERATOR_NAMESPACE,
    ATOLL_WEBHOOK_HOST: '127.0.0.1',
    ATOLL_WEBHOOK_PORT: '0',
    ATOLL_WEBHOOK_URL: 'https://127.0.0.1:0',
    ATOLL_HEALTH_HOST: '127.0.0.1',
    ATOLL_HEALTH_PORT: '0',
    ATOLL_LEADER_ELECT: 'false',
    ...overrides,
  });
}
