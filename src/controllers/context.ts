import type { ExternalConnection, IntegrationType, Workspace } from '../api/v1alpha1/index.js';
import type { OperatorConfig } from '../config/operator-config.js';
import type { CryptoSetup } from '../crypto/setup.js';
import type { KubeClient, KubeObject, SecretObject } from '../kube/client.js';
import type { EventRecorder } from '../kube/events.js';
import type { Informer } from '../runtime/informer.js';
import type { OperatorMetrics } from '../runtime/metrics.js';

export type Secret = SecretObject;

/** Secret caches of workspace namespaces (runtime/secret-watch.ts): the operator holds no cluster-wide Secret access. */
export interface SecretCaches<T extends KubeObject = Secret> {
  get(namespace: string, name: string): T | undefined;
  /** True when `get` answers for this Secret as the API server would; otherwise read it with a GET. */
  synced(namespace: string, name: string): boolean;
  /** Starts caching a namespace's managed Secrets: call once the operator's Secret access there exists. */
  watch(namespace: string): void;
}

/** Everything a reconciler may use; built once by the operator. */
export interface OperatorContext {
  client: KubeClient;
  config: OperatorConfig;
  metrics: OperatorMetrics;
  events: EventRecorder;
  crypto: CryptoSetup;
  workspaces: Informer<Workspace & KubeObject>;
  connections: Informer<ExternalConnection & KubeObject>;
  types: Informer<IntegrationType & KubeObject>;
  secrets: SecretCaches;
}
