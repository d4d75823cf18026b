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
import { loopbackOperatorConfig } from '../dev/embedded.js';

async function main(): Promise<void> {
  const kubeconfig = process.env.ATOLL_BENCH_KUBECONFIG;
  if (!kubeconfig || !process.send)
    throw new Error('controller-process is forked by a benchmark with ATOLL_BENCH_KUBECONFIG set');
  const settings = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => k.startsWith('ATOLL_') && k !== 'ATOLL_BENCH_KUBECONFIG'),
  );
  const config = loopbackOperatorConfig(settings);
  const log = createLogger({ level: config.logLevel === 'info' ? 'warn' : config.logLevel, name: 'atoll-controller' });
  const operator = await startOperator({ client: KubeClient.fromKubeconfigFile(kubeconfig), config, log });
  process.on('message', (msg) => {
    if (msg !== 'stop') return;
    const timer = setTimeout(() => process.exit(1), 15_000);
    timer.unref();
    void operator.stop().finally(() => process.exit(0));
  });
  // The bench went away (crashed or killed): do not outlive it.
  process.on('disconnect', () => {
    process.stderr.write('controller process: the benchmark went away, exiting\n');
    process.exit(1);
  });
  process.send({ healthURL: operator.healthURL, webhookPort: operator.webhookPort });
}

main().catch((err: unknown) => {
  process.stderr.write(`controller process failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
