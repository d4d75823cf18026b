import { readFileSync } from 'node:fs';
import type { OperatorConfig } from '../config/operator-config.js';
import { setupCrypto } from '../crypto/setup.js';
import { startGateway, type Gateway } from '../gateway/server.js';
import { KubeClient } from '../kube/client.js';
import { createLogger, type Logger } from '../runtime/logger.js';
import { createOperatorMetrics } from '../runtime/metrics.js';
import { loadOperatorConfig } from '../config/operator-config.js';
import { startHealthServer } from '../runtime/health-server.js';
import { waitForSignal } from './signals.js';

/** The gateway with the operator's crypto setup (same providers, same keys). */
export async function startGatewayFromConfig(opts: { client: KubeClient; config: OperatorConfig; log: Logger; host: string; port: number }): Promise<Gateway> {
  const crypto = await setupCrypto(opts.config, opts.client, { fingerprints: false });
  return startGateway({ client: opts.client, envelope: crypto.envelope, log: opts.log, metrics: createOperatorMetrics(), host: opts.host, port: opts.port, usage: { flushIntervalMs: opts.config.usage.flushIntervalMs } });
}

/** `atoll gateway`: the credential-injecting proxy, in cluster. */
export async function gatewayCommand(): Promise<number> {
  const config = loadOperatorConfig();
  const log = createLogger({ level: config.logLevel, name: 'atoll-gateway' });
  const client = KubeClient.fromDefault();
  const metrics = createOperatorMetrics();
  const crypto = await setupCrypto(config, client, { fingerprints: false });
  const port = Number(process.env.ATOLL_GATEWAY_PORT ?? 8443);
  // Callers send ServiceAccount tokens: serve TLS whenever a certificate is mounted.
  const certFile = process.env.ATOLL_GATEWAY_TLS_CERT_FILE;
  const keyFile = process.env.ATOLL_GATEWAY_TLS_KEY_FILE;
  const tls = certFile && keyFile ? { certPem: readFileSync(certFile, 'utf8'), keyPem: readFileSync(keyFile, 'utf8') } : undefined;
  const gateway = await startGateway({ client, envelope: crypto.envelope, log, metrics, host: process.env.ATOLL_GATEWAY_HOST ?? '0.0.0.0', port, usage: { flushIntervalMs: config.usage.flushIntervalMs }, ...(tls ? { tls } : {}) });
  const health = await startHealthServer({ host: config.health.host, port: config.health.port, registry: metrics.registry, checks: { live: () => true, ready: () => gateway.ready() } });
  log.info({ url: gateway.url }, 'gateway started');
  await waitForSignal();
  await gateway.close();
  await health.close();
  return 0;
}
