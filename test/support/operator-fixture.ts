import type { DestinationStream } from 'pino';
import {
  installAtoll,
  loopbackOperatorConfig,
  OPERATOR_NAMESPACE,
  precreateWebhookConfigurations,
} from '../../src/dev/embedded.js';
import type { KubeClient } from '../../src/kube/client.js';
import { startOperator, type RunningOperator } from '../../src/operator.js';
import { createLogger } from '../../src/runtime/logger.js';
import { ControlPlane, WEBHOOK_CLIENT_NAME } from '../../src/dev/control-plane.js';
import { MOTO_CREDENTIALS, MOTO_REGION } from './moto.js';

/** Test seams of the reconciler (trusted CAs, dial override, fault injection), as startOperator takes them. */
export type ProbeHooks = NonNullable<Parameters<typeof startOperator>[0]['probeHooks']>;

/** The namespace the shipped RBAC (config/rbac) binds the operator in. */
export { OPERATOR_NAMESPACE } from '../../src/dev/embedded.js';

export interface IsolatedAtollOptions {
  /** Seal with AWS KMS (e.g. moto on loopback) instead of the local provider. */
  kms?: { provider: 'aws-kms'; endpoint: string; keyId: string; region?: string };
  probeHooks?: ProbeHooks;
  /** Lease-based leader election; off by default so an API-server outage cannot make a leader exit the test process. */
  leaderElection?: boolean;
  /**
   * Run kube-controller-manager's garbage collection and namespace deletion.
   * Default true. Its `resourcequota` controller always runs: the connection
   * quota of every workspace needs it, as in a real cluster.
   */
  controllerManager?: boolean;
  /** Identity of the primary operator (its Lease holderIdentity). Default `atoll-primary`. */
  identity?: string;
  /** Start the primary operator before returning. Default true. */
  startOperator?: boolean;
  /** Further operator settings (ATOLL_* variables), e.g. a short ATOLL_DEK_CACHE_MAX_AGE. */
  env?: Record<string, string>;
}

/** One operator process-equivalent: its own webhook and health ports, its own metrics. */
export interface OperatorInstance {
  readonly identity: string;
  readonly operator: RunningOperator;
  stop(): Promise<void>;
}

export interface IsolatedAtoll {
  cp: ControlPlane;
  /** Admin client (system:masters) of the isolated control plane. */
  client: KubeClient;
  /** The running primary operator; throws while it is stopped. */
  operator(): RunningOperator;
  /** Starts the primary operator; if one is running, stops it first and starts a fresh one. */
  start(): Promise<void>;
  /** Stops the primary operator gracefully (the control plane keeps running). */
  stopOperator(): Promise<void>;
  /** Starts another operator against the same API server (leader-election tests). */
  startReplica(identity: string): Promise<OperatorInstance>;
  /** Stops every operator, then the control plane. */
  stop(): Promise<void>;
  /** Every JSON log line the operators wrote, oldest first. */
  logLines(): string[];
}

/**
 * An atoll of its own for destructive tests (restart the API server, kill the
 * controller, run two leaders) that must not disturb the shared `atoll dev`:
 * a fresh control plane with the CRDs, RBAC and built-in types installed, and
 * operators running in this process (the primary one started unless
 * `startOperator: false`), each with its own webhook and health port (port 0,
 * so instances never collide) and logs captured in memory.
 */
export async function startIsolatedAtoll(opts: IsolatedAtollOptions = {}): Promise<IsolatedAtoll> {
  const lines: string[] = [];
  const destination: DestinationStream = { write: (chunk: string) => void lines.push(chunk.trimEnd()) };
  const log = createLogger({ level: 'debug', destination });
  // kube-controller-manager starts after the CRDs (below), so its quota and GC controllers know them.
  const cp = await ControlPlane.start({ controllerManager: false });
  const restoreEnv = opts.kms ? useMotoCredentialsIfUnset() : () => {};
  const client = cp.adminClient();
  const instances = new Set<OperatorInstance>();
  let primary: OperatorInstance | undefined;

  const launch = async (identity: string): Promise<OperatorInstance> => {
    const config = loopbackOperatorConfig({
      ATOLL_LEADER_ELECT: String(opts.leaderElection ?? false),
      POD_NAME: identity,
      ATOLL_WEBHOOK_CLIENT_CA_FILE: cp.webhookClientCAPath,
      ATOLL_WEBHOOK_CLIENT_NAMES: WEBHOOK_CLIENT_NAME,
      ...(opts.kms
        ? {
            ATOLL_KMS_PROVIDER: opts.kms.provider,
            ATOLL_KMS_ENDPOINT: opts.kms.endpoint,
            ATOLL_KMS_KEY_ID: opts.kms.keyId,
            AWS_REGION: opts.kms.region ?? MOTO_REGION,
          }
        : {}),
      ...opts.env,
    });
    // As its own ServiceAccount with the shipped RBAC, as in a cluster: the admission policies fence exactly that identity.
    const operatorClient = await cp.serviceAccountClient(OPERATOR_NAMESPACE, config.serviceAccounts.controller);
    const operator = await startOperator({
      client: operatorClient,
      config,
      log: log.child({ component: 'controller', instance: identity }),
      ...(opts.probeHooks ? { probeHooks: opts.probeHooks } : {}),
    });
    const instance: OperatorInstance = {
      identity,
      operator,
      async stop() {
        if (!instances.delete(instance)) return;
        await operator.stop();
      },
    };
    instances.add(instance);
    return instance;
  };

  const stopOperator = async (): Promise<void> => {
    const p = primary;
    primary = undefined;
    await p?.stop();
  };
  const start = async (): Promise<void> => {
    await stopOperator();
    primary = await launch(opts.identity ?? 'atoll-primary');
  };
  const stopAll = async (): Promise<void> => {
    primary = undefined;
    try {
      for (const i of [...instances]) await i.stop();
    } finally {
      await cp.stop();
      restoreEnv();
    }
  };

  try {
    await installAtoll(client);
    await precreateWebhookConfigurations(client);
    await cp.startControllerManager(opts.controllerManager === false ? ['resourcequota'] : undefined);
    if (opts.startOperator !== false) await start();
  } catch (err) {
    await stopAll();
    throw err;
  }

  return {
    cp,
    client,
    operator() {
      if (!primary) throw new Error('the operator is not running');
      return primary.operator;
    },
    start,
    stopOperator,
    startReplica: launch,
    stop: stopAll,
    logLines: () => [...lines],
  };
}

/**
 * The AWS SDK's default credential chain reads the environment; moto accepts
 * any static pair. Sets it only where nothing is configured, and undoes that.
 */
function useMotoCredentialsIfUnset(): () => void {
  if (process.env.AWS_ACCESS_KEY_ID || process.env.AWS_PROFILE) return () => {};
  process.env.AWS_ACCESS_KEY_ID = MOTO_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = MOTO_CREDENTIALS.secretAccessKey;
  return () => {
    delete process.env.AWS_ACCESS_KEY_ID;
    delete process.env.AWS_SECRET_ACCESS_KEY;
  };
}

/**
 * Sum of a Prometheus counter's series whose labels include `match`, scraped
 * from an operator's /metrics: what the process did, observed from outside.
 */
export async function scrapeCounter(
  healthURL: string,
  name: string,
  match: Record<string, string> = {},
): Promise<number> {
  const text = await (await fetch(`${healthURL}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const labels = Object.fromEntries(
      [...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]),
    );
    if (Object.entries(match).every(([k, v]) => labels[k] === v)) sum += Number(m[3]);
  }
  return sum;
}

/** HTTP status of an operator's /readyz (0 when it cannot be reached at all). */
export async function readyzStatus(healthURL: string): Promise<number> {
  try {
    return (await fetch(`${healthURL}/readyz`)).status;
  } catch {
    return 0;
  }
}
