import { loadOperatorConfig } from '../config/operator-config.js';
import { KubeClient } from '../kube/client.js';
import { startOperator } from '../operator.js';
import { createLogger } from '../runtime/logger.js';
import { collectProcessMetrics, createOperatorMetrics } from '../runtime/metrics.js';
import { waitForSignal } from './signals.js';

/** `atoll controller`: reconcilers, admission webhooks, health and metrics. */
export async function controllerCommand(): Promise<number> {
  const config = loadOperatorConfig();
  const log = createLogger({ level: config.logLevel, name: 'atoll-controller' });
  const metrics = createOperatorMetrics();
  collectProcessMetrics(metrics.registry);
  const operator = await startOperator({ client: KubeClient.fromDefault(), config, log, metrics });
  const signal = await waitForSignal();
  log.info({ signal }, 'shutting down');
  const timer = setTimeout(() => process.exit(1), 30_000);
  timer.unref();
  await operator.stop();
  return 0;
}
