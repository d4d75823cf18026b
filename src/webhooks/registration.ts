import type { KubeClient } from '../kube/client.js';
import { MutatingWebhookConfigurations, ValidatingWebhookConfigurations } from '../kube/resources.js';

export const MUTATING_WEBHOOK = 'atoll-mutating';
export const VALIDATING_WEBHOOK = 'atoll-validating';

export const PATHS = {
  mutateConnection: '/mutate-externalconnection',
  validateConnection: '/validate-externalconnection',
  validateWorkspace: '/validate-workspace',
} as const;

export interface WebhookEndpoint {
  caPem: string;
  /** Out of cluster: https://host:port. */
  urlBase?: string;
  /** In cluster: the Service in the operator's namespace. */
  service?: { namespace: string; name: string; port: number };
}

function clientConfig(ep: WebhookEndpoint, path: string) {
  const caBundle = Buffer.from(ep.caPem).toString('base64');
  if (ep.urlBase) return { url: `${ep.urlBase}${path}`, caBundle };
  return { service: { ...ep.service!, path }, caBundle };
}

const CONNECTION_RULE = {
  apiGroups: ['atoll.dev'],
  apiVersions: ['v1alpha1'],
  resources: ['externalconnections'],
  operations: ['CREATE', 'UPDATE'],
  scope: 'Namespaced',
};
/** Validation also sees deletes: a connection in use is protected, and every delete is recorded with its actor. */
const CONNECTION_VALIDATION_RULE = { ...CONNECTION_RULE, operations: ['CREATE', 'UPDATE', 'DELETE'] };

/**
 * Declares both webhook configurations with server-side apply. Fail closed:
 * with the webhook down a connection cannot be written at all, and the CRD's
 * own rule still refuses a plaintext `value` if the configuration is deleted.
 * Sealing has no side effect beyond a KMS data-key request, so dry-run works
 * (`atoll seal` is a server-side dry run that returns the sealed manifest).
 */
export async function registerWebhooks(client: KubeClient, ep: WebhookEndpoint): Promise<void> {
  const common = {
    admissionReviewVersions: ['v1'],
    sideEffects: 'None',
    failurePolicy: 'Fail',
    timeoutSeconds: 10,
    matchPolicy: 'Equivalent',
  };
  await client.apply(MutatingWebhookConfigurations, {
    metadata: { name: MUTATING_WEBHOOK, labels: { 'app.kubernetes.io/managed-by': 'atoll' } },
    webhooks: [
      {
        name: 'seal.externalconnections.atoll.dev',
        clientConfig: clientConfig(ep, PATHS.mutateConnection),
        rules: [CONNECTION_RULE],
        reinvocationPolicy: 'IfNeeded',
        ...common,
      },
    ],
  });
  await client.apply(ValidatingWebhookConfigurations, {
    metadata: { name: VALIDATING_WEBHOOK, labels: { 'app.kubernetes.io/managed-by': 'atoll' } },
    webhooks: [
      // Validation records audit Events (never on a dry run): NoneOnDryRun.
      {
        name: 'validate.externalconnections.atoll.dev',
        clientConfig: clientConfig(ep, PATHS.validateConnection),
        rules: [CONNECTION_VALIDATION_RULE],
        ...common,
        sideEffects: 'NoneOnDryRun',
      },
      {
        name: 'validate.workspaces.atoll.dev',
        clientConfig: clientConfig(ep, PATHS.validateWorkspace),
        rules: [
          {
            apiGroups: ['atoll.dev'],
            apiVersions: ['v1alpha1'],
            resources: ['workspaces'],
            operations: ['CREATE', 'UPDATE', 'DELETE'],
            scope: 'Namespaced',
          },
        ],
        ...common,
        sideEffects: 'NoneOnDryRun',
      },
    ],
  });
}
