import type { ExternalConnection, IntegrationType, Workspace } from './api/v1alpha1/index.js';
import { CONNECTION_LABEL, ConditionType, isConditionTrue } from './api/v1alpha1/index.js';
import type { OperatorConfig } from './config/operator-config.js';
import type { OperatorContext } from './controllers/context.js';
import { ExternalConnectionReconciler, type ReconcilerHooks } from './controllers/externalconnection/reconciler.js';
import { WorkspaceReconciler } from './controllers/workspace/reconciler.js';
import { setupCrypto } from './crypto/setup.js';
import type { KubeClient, KubeObject } from './kube/client.js';
import { EventRecorder } from './kube/events.js';
import { ExternalConnections, IntegrationTypes, Workspaces } from './kube/resources.js';
import { Controller } from './runtime/controller.js';
import { startHealthServer } from './runtime/health-server.js';
import { Informer, objectKey, stripForCache } from './runtime/informer.js';
import { LeaderElector } from './runtime/leader-election.js';
import type { Logger } from './runtime/logger.js';
import { Gauge } from 'prom-client';
import { createOperatorMetrics, registerKmsStats, type OperatorMetrics } from './runtime/metrics.js';
import { SecretWatch } from './runtime/secret-watch.js';
import { serveWebhooks } from './webhooks/serve.js';
import { onlyUsageChanged } from './domain/usage.js';
import { secretAccessGranted } from './domain/secret-access.js';

type Ws = Workspace & KubeObject;
type Conn = ExternalConnection & KubeObject;
type Type = IntegrationType & KubeObject;

/** How long a workspace's recount waits after a connection change: changes within it are counted by one status write. */
const RECOUNT_DELAY_MS = 1000;

export interface RunningOperator {
  metrics: OperatorMetrics;
  healthURL: string;
  webhookPort?: number;
  ready(): boolean;
  stop(): Promise<void>;
}

/**
 * Wires the controller process: informers, webhooks (served by every
 * replica), and the two reconcilers (run by the leader only).
 */
export async function startOperator(opts: {
  client: KubeClient;
  config: OperatorConfig;
  log: Logger;
  probeHooks?: ReconcilerHooks;
  metrics?: OperatorMetrics;
}): Promise<RunningOperator> {
  const { client, config, log } = opts;
  const metrics = opts.metrics ?? createOperatorMetrics();
  const crypto = await setupCrypto(config, client);
  registerKmsStats(metrics.registry, () => crypto.envelope.stats());

  // Caches keep what reconciles read: no managedFields, no kubectl last-applied copies (ADR 0022).
  const workspaces = new Informer<Ws>(client, Workspaces, { log, transform: stripForCache });
  const connections = new Informer<Conn>(client, ExternalConnections, { log, transform: stripForCache });
  const types = new Informer<Type>(client, IntegrationTypes, { log, transform: stripForCache });
  const secrets = new SecretWatch(client, log, { view: stripForCache });
  // The local provider keeps its key in the cluster: say so where operators look (docs/threat-model.md).
  new Gauge({
    name: 'atoll_kms_provider_info',
    help: 'Default KMS provider (value 1); provider="local" means the key-encryption key sits in the cluster.',
    labelNames: ['provider'] as const,
    registers: [metrics.registry],
    collect() {
      this.set({ provider: config.kms.provider }, 1);
    },
  });
  new Gauge({
    name: 'atoll_local_key_ring_workspaces',
    help: 'Workspaces whose key is a local key, kept in Secret atoll-local-kms of the operator namespace.',
    registers: [metrics.registry],
    collect() {
      this.set(workspaces.list().filter((w) => crypto.keyFor(w.spec?.encryption?.keyId).provider === 'local').length);
    },
  });
  new Gauge({
    name: 'atoll_secret_watches',
    help: 'Secret watches the process holds: one per workspace namespace (managed) and one per Secret a secretKeyRef names (referenced).',
    labelNames: ['kind'] as const,
    registers: [metrics.registry],
    collect() {
      const n = secrets.watchCount();
      this.set({ kind: 'managed' }, n.managed);
      this.set({ kind: 'referenced' }, n.referenced);
    },
  });
  const ctx: OperatorContext = {
    client,
    config,
    metrics,
    events: new EventRecorder(client, 'atoll-controller', log),
    crypto,
    workspaces,
    connections,
    types,
    secrets,
  };
  for (const inf of [workspaces, connections, types]) inf.start();
  await Promise.all([workspaces.waitForSync(), connections.waitForSync(), types.waitForSync()]);
  metrics.connectionsReady.set({ ready: 'true' }, 0);

  const webhook = config.webhook.enabled ? await serveWebhooks(ctx, log.child({ subsystem: 'webhook' })) : undefined;

  const wsController = new Controller({
    name: 'workspace',
    reconcile: new WorkspaceReconciler(ctx).reconcile,
    log,
    metrics,
    // A workspace's set-up is a dozen API round trips, mostly waiting: a burst of new workspaces needs more than two.
    workers: 4,
  });
  // The reconciler's enqueue callback runs only after the controller below exists.
  const connReconciler = new ExternalConnectionReconciler(
    ctx,
    (key, lane, afterMs) =>
      afterMs === undefined ? connController.enqueue(key, lane) : connController.queue.addAfter(key, afterMs, lane),
    opts.probeHooks,
  );
  const connController = new Controller({
    name: 'externalconnection',
    reconcile: connReconciler.reconcile,
    log,
    metrics,
    workers: 8,
  });

  wsController.watch(workspaces, undefined, specChanged);
  // Workspace status counts connections by readiness: their use (status.usage, flushed by the gateway) is no reason to recount.
  // Recounts wait a moment, so a burst of connection changes costs one count write per workspace and second, not one each.
  connections.on((_event, c, old) => {
    if (onlyUsageChanged(c, old)) return;
    for (const key of workspaceKeys(ctx, c.metadata?.namespace)) wsController.queue.addAfter(key, RECOUNT_DELAY_MS);
  });
  connController.watch(connections, undefined, specChanged);
  // Connections depend on the Workspace spec (policy, key, identity), not on its status counts.
  connController.watch(workspaces, (w) => connectionKeys(ctx, w.metadata?.namespace), specChanged);
  connController.watch(types, (t) =>
    ctx.connections
      .list()
      .filter((c) => c.spec?.type === t.metadata?.name)
      .map(objectKey),
  );
  secrets.on((_e, s, old) => {
    if (old && old.metadata?.resourceVersion === s.metadata?.resourceVersion) return;
    const ns = s.metadata?.namespace;
    const owner = s.metadata?.labels?.[CONNECTION_LABEL];
    const keys = new Set<string>(owner ? [`${ns}/${owner}`] : []);
    for (const c of ctx.connections.list(ns)) {
      if (Object.values(c.spec?.credentials ?? {}).some((src) => src.secretKeyRef?.name === s.metadata?.name))
        keys.add(objectKey(c));
    }
    for (const k of keys) connController.enqueue(k);
  });
  // Tenant Secrets named in a secretKeyRef get a narrow watch each, for as long as a connection names them.
  connections.on((event, c) => secrets.setReferences(objectKey(c), event === 'delete' ? [] : referencedSecrets(c)));
  for (const c of connections.list()) secrets.setReferences(objectKey(c), referencedSecrets(c));
  // A namespace's Secrets are watched once our access there exists (the reconciler starts the watch right after
  // applying the bindings; other replicas see it in the Workspace's status), and until its Workspace is gone.
  // One namespace per event: a burst of Workspace status writes costs no scan of every workspace.
  const followWorkspace = (w: Ws) => {
    const ns = w.metadata.namespace!;
    if (workspaces.list(ns).length === 0) secrets.unwatch(ns);
    else if (secretAccessGranted(w)) secrets.watch(ns);
  };
  workspaces.on((_event, w) => followWorkspace(w));
  for (const w of workspaces.list()) followWorkspace(w);
  const gauge = setInterval(() => {
    const all = connections.list();
    const ready = all.filter((c) => isConditionTrue(c.status?.conditions, ConditionType.Ready)).length;
    metrics.connectionsReady.set({ ready: 'true' }, ready);
    metrics.connectionsReady.set({ ready: 'false' }, all.length - ready);
  }, 5000);
  gauge.unref();

  let elector: LeaderElector | undefined;
  let stopping = false;
  const startControllers = () => {
    wsController.start();
    connController.start();
    // Routine: a resync of everything must not delay a change a user makes meanwhile.
    for (const w of workspaces.list()) wsController.enqueue(objectKey(w), 'routine');
    for (const c of connections.list()) connController.enqueue(objectKey(c), 'routine');
  };
  if (config.leaderElection.enabled) {
    const { identity, leaseDurationMs, renewDeadlineMs, retryPeriodMs } = config.leaderElection;
    elector = new LeaderElector({
      client,
      namespace: config.namespace,
      name: 'atoll-controller',
      identity,
      leaseDurationMs,
      renewDeadlineMs,
      retryPeriodMs,
      log,
    });
    void elector
      .run(() => {
        if (!stopping) {
          // Exit at once (client-go: klog.Fatal): an in-flight reconcile must not write after the renew deadline.
          log.fatal('leadership lost; exiting so a fresh process can rejoin');
          process.exit(1);
        }
      })
      .then(() => {
        if (!stopping) startControllers();
      });
  } else {
    startControllers();
  }

  const ready = () => workspaces.healthy() && connections.healthy() && types.healthy();
  const health = await startHealthServer({
    host: config.health.host,
    port: config.health.port,
    registry: metrics.registry,
    checks: { live: () => true, ready },
  });
  log.info(
    { health: health.url, webhookPort: webhook?.port, leaderElection: config.leaderElection.enabled },
    'controller started',
  );

  return {
    metrics,
    healthURL: health.url,
    webhookPort: webhook?.port,
    ready,
    async stop() {
      stopping = true;
      clearInterval(gauge);
      await Promise.all([wsController.stop(), connController.stop()]);
      await elector?.stop();
      await webhook?.close();
      await health.close();
      await Promise.all([workspaces.stop(), connections.stop(), types.stop(), secrets.stop()]);
      log.info('controller stopped');
    },
  };
}

/** `namespace/name` of every Secret a connection's credentials name in a secretKeyRef. */
function referencedSecrets(c: Conn): string[] {
  const ns = c.metadata?.namespace;
  return Object.values(c.spec?.credentials ?? {}).flatMap((src) =>
    src.secretKeyRef?.name && ns ? [`${ns}/${src.secretKeyRef.name}`] : [],
  );
}

/** Skip updates that touch only status: our own status writes must not loop. */
function specChanged(obj: KubeObject, old?: KubeObject): boolean {
  if (!old) return true;
  const a = obj.metadata ?? {};
  const b = old.metadata ?? {};
  return (
    a.generation !== b.generation ||
    JSON.stringify(a.annotations ?? {}) !== JSON.stringify(b.annotations ?? {}) ||
    JSON.stringify(a.labels ?? {}) !== JSON.stringify(b.labels ?? {}) ||
    a.deletionTimestamp !== b.deletionTimestamp ||
    JSON.stringify(a.finalizers) !== JSON.stringify(b.finalizers)
  );
}

function workspaceKeys(ctx: OperatorContext, ns: string | undefined): string[] {
  return ns ? ctx.workspaces.list(ns).map(objectKey) : [];
}

function connectionKeys(ctx: OperatorContext, ns: string | undefined): string[] {
  return ns ? ctx.connections.list(ns).map(objectKey) : [];
}
