import { readFileSync } from 'node:fs';
import type { OperatorConfig } from '../config/operator-config.js';
import { setupCrypto } from '../crypto/setup.js';
import { keepHttpParserOnBaselineCompiler } from '../gateway/parser-tiering.js';
import { startGateway, type Gateway } from '../gateway/server.js';
import { KubeClient } from '../kube/client.js';
import { describeError } from '../runtime/describe-error.js';
import { createLogger, type Logger } from '../runtime/logger.js';
import { collectProcessMetrics, createOperatorMetrics } from '../runtime/metrics.js';
import { loadOperatorConfig } from '../config/operator-config.js';
import { startHealthServer } from '../runtime/health-server.js';
import { waitForSignal } from './signals.js';
import { ensureServingCertificate } from '../webhooks/certs.js';

/** The gateway with the operator's crypto setup (same providers, same keys), serving HTTPS with `tls`. */
export async function startGatewayFromConfig(opts: {
  client: KubeClient;
  config: OperatorConfig;
  log: Logger;
  host: string;
  port: number;
  tls: { certPem: string; keyPem: string };
}): Promise<Gateway> {
  const crypto = await setupCrypto(opts.config, opts.client, { fingerprints: false });
  return startGateway({
    client: opts.client,
    envelope: crypto.envelope,
    log: opts.log,
    metrics: createOperatorMetrics(),
    host: opts.host,
    port: opts.port,
    tls: opts.tls,
    usage: { flushIntervalMs: opts.config.usage.flushIntervalMs },
  });
}

const TLS_RELOAD_MS = 6 * 3600_000;

export const GatewayTLSMessage = {
  missing:
    'the gateway serves HTTPS: set ATOLL_GATEWAY_TLS_SELF_MANAGED (a Secret name it keeps a certificate in, with ATOLL_GATEWAY_TLS_DNS_NAMES), or ATOLL_GATEWAY_TLS_CERT_FILE and ATOLL_GATEWAY_TLS_KEY_FILE, or opt out explicitly with ATOLL_GATEWAY_INSECURE_PLAINTEXT=true',
  noNames:
    'ATOLL_GATEWAY_TLS_DNS_NAMES must list the names clients use for the gateway, comma-separated, e.g. atoll-gateway.atoll-system.svc',
} as const;

export type GatewayServing = { tls: { certPem: string; keyPem: string } } | { insecurePlaintext: true };

/**
 * How the gateway serves, from the environment: mounted certificate files,
 * a self-managed certificate kept in a Secret of its namespace (as the
 * webhook's), or the explicit plaintext opt-out. Nothing set is an error.
 */
export async function gatewayServingFromEnv(
  env: NodeJS.ProcessEnv,
  client: KubeClient,
  namespace: string,
): Promise<GatewayServing> {
  const certFile = env.ATOLL_GATEWAY_TLS_CERT_FILE;
  const keyFile = env.ATOLL_GATEWAY_TLS_KEY_FILE;
  if (certFile && keyFile)
    return { tls: { certPem: readFileSync(certFile, 'utf8'), keyPem: readFileSync(keyFile, 'utf8') } };
  const secretName = env.ATOLL_GATEWAY_TLS_SELF_MANAGED;
  if (secretName) {
    const dnsNames = (env.ATOLL_GATEWAY_TLS_DNS_NAMES ?? '')
      .split(',')
      .map((n) => n.trim())
      .filter(Boolean);
    if (dnsNames.length === 0) throw new Error(GatewayTLSMessage.noNames);
    const cert = await ensureServingCertificate(
      client,
      namespace,
      { dnsNames, ipAddresses: [] },
      { secretName, caName: 'atoll-gateway-ca' },
    );
    return { tls: { certPem: cert.certPem, keyPem: cert.keyPem } };
  }
  if (env.ATOLL_GATEWAY_INSECURE_PLAINTEXT === 'true') return { insecurePlaintext: true };
  throw new Error(GatewayTLSMessage.missing);
}

/** `atoll gateway`: the credential-injecting proxy, in cluster. */
export async function gatewayCommand(): Promise<number> {
  keepHttpParserOnBaselineCompiler();
  const config = loadOperatorConfig();
  const log = createLogger({ level: config.logLevel, name: 'atoll-gateway' });
  const client = KubeClient.fromDefault();
  const metrics = createOperatorMetrics();
  collectProcessMetrics(metrics.registry);
  const crypto = await setupCrypto(config, client, { fingerprints: false });
  const port = Number(process.env.ATOLL_GATEWAY_PORT ?? 8443);
  // Callers send ServiceAccount tokens and receive credentials: HTTPS unless explicitly opted out.
  const serving = await gatewayServingFromEnv(process.env, client, config.namespace);
  const gateway = await startGateway({
    client,
    envelope: crypto.envelope,
    log,
    metrics,
    host: process.env.ATOLL_GATEWAY_HOST ?? '0.0.0.0',
    port,
    usage: { flushIntervalMs: config.usage.flushIntervalMs },
    ...serving,
  });
  const health = await startHealthServer({
    host: config.health.host,
    port: config.health.port,
    registry: metrics.registry,
    checks: { live: () => true, ready: () => gateway.ready() },
  });
  log.info({ url: gateway.url }, 'gateway started');
  // Pick up a renewed certificate (self-managed renewal, cert-manager rotating the mounted Secret) without a restart.
  const reload = setInterval(() => {
    gatewayServingFromEnv(process.env, client, config.namespace)
      .then((next) => {
        if ('tls' in next) gateway.updateTLS(next.tls);
      })
      .catch((err: unknown) =>
        log.warn({ error: describeError(err) }, 'reloading the gateway certificate failed; serving the current one'),
      );
  }, TLS_RELOAD_MS);
  reload.unref();
  await waitForSignal();
  clearInterval(reload);
  await gateway.close();
  await health.close();
  return 0;
}
