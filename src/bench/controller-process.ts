/**
 * The operator (controller + webhook) in a process of its own, for the
 * benchmarks: forked by src/bench/credentials.ts so that the memory and CPU it
 * measures are the controller's alone, as in a cluster.
 *
 * Input: ATOLL_BENCH_KUBECONFIG (the controller ServiceAccount's kubeconfig)
 * and any ATOLL_* setting, from the environment. Output over IPC:
 * `{ healthURL, webhookPort }` once started; it stops on a `stop` message.
 */
import { KubeClient } from '../kube/client.js';
import { startOperator } from '../operator.js';
import { createLogger } from '../runtime/logger.js';
import { collectProcessMetrics, createOperatorMetrics } from '../runtime/metrics.js';
import { loopbackOperatorConfig } from '../dev/embedded.js';
import { serveBenchProcess } from './bench-process.js';

serveBenchProcess('controller', async (kubeconfig, settings) => {
  const config = loopbackOperatorConfig(settings);
  const log = createLogger({ level: config.logLevel === 'info' ? 'warn' : config.logLevel, name: 'atoll-controller' });
  const metrics = createOperatorMetrics();
  collectProcessMetrics(metrics.registry);
  const operator = await startOperator({ client: KubeClient.fromKubeconfigFile(kubeconfig), config, log, metrics });
  return { started: { healthURL: operator.healthURL, webhookPort: operator.webhookPort }, stop: () => operator.stop() };
});
