/**
 * The gateway in a process of its own, for the credentials benchmark: its
 * memory with every connection and managed Secret of the run cached is the
 * gateway's alone, as in a cluster (issue 12's 150 MiB target).
 *
 * Input: ATOLL_BENCH_KUBECONFIG (the gateway ServiceAccount's kubeconfig) and
 * any ATOLL_* setting, from the environment. Output over IPC: `{ url }` once
 * listening on loopback (plain HTTP); it stops on a `stop` message.
 */
import { KubeClient } from '../kube/client.js';
import { setupCrypto } from '../crypto/setup.js';
import { keepHttpParserOnBaselineCompiler } from '../gateway/parser-tiering.js';
import { startGateway } from '../gateway/server.js';
import { createLogger } from '../runtime/logger.js';
import { createOperatorMetrics } from '../runtime/metrics.js';
import { loopbackOperatorConfig } from '../dev/embedded.js';
import { serveBenchProcess } from './bench-process.js';

serveBenchProcess('gateway', async (kubeconfig, settings) => {
  keepHttpParserOnBaselineCompiler(); // as `atoll gateway` does
  const config = loopbackOperatorConfig(settings);
  const client = KubeClient.fromKubeconfigFile(kubeconfig);
  const log = createLogger({ level: config.logLevel === 'info' ? 'warn' : config.logLevel, name: 'atoll-gateway' });
  const crypto = await setupCrypto(config, client, { fingerprints: false });
  const gateway = await startGateway({
    client,
    envelope: crypto.envelope,
    log,
    metrics: createOperatorMetrics(),
    host: '127.0.0.1',
    port: 0,
    insecurePlaintext: true,
  });
  return { started: { url: gateway.url }, stop: () => gateway.close() };
});
