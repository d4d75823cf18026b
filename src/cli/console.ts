import { readFileSync } from 'node:fs';
import { startConsole } from '../console/server/server.js';
import { createLogger } from '../runtime/logger.js';
import { flag, UsageError, type ParsedArgs } from './args.js';
import { waitForSignal } from './signals.js';

const IN_CLUSTER_CA = '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt';

/**
 * `atoll console`: the Integrations panel. It needs only the API server's
 * address and CA, never a token of its own: every Kubernetes request carries
 * the signed-in person's token.
 */
export async function consoleCommand(args: ParsedArgs): Promise<number> {
  const env = process.env;
  const inCluster = env.KUBERNETES_SERVICE_HOST
    ? `https://${env.KUBERNETES_SERVICE_HOST.includes(':') ? `[${env.KUBERNETES_SERVICE_HOST}]` : env.KUBERNETES_SERVICE_HOST}:${env.KUBERNETES_SERVICE_PORT ?? '443'}`
    : undefined;
  const apiServer = flag(args, 'api-server') ?? env.ATOLL_CONSOLE_API_SERVER ?? inCluster;
  if (!apiServer)
    throw new UsageError(
      'atoll console: no API server: pass --api-server https://host:6443 or set ATOLL_CONSOLE_API_SERVER (in a cluster, KUBERNETES_SERVICE_HOST is used)',
    );
  const caFile = flag(args, 'ca-file') ?? env.ATOLL_CONSOLE_CA_FILE ?? (inCluster ? IN_CLUSTER_CA : undefined);
  const certFile = flag(args, 'tls-cert-file') ?? env.ATOLL_CONSOLE_TLS_CERT_FILE;
  const keyFile = flag(args, 'tls-key-file') ?? env.ATOLL_CONSOLE_TLS_KEY_FILE;
  if (Boolean(certFile) !== Boolean(keyFile))
    throw new UsageError('atoll console: --tls-cert-file and --tls-key-file go together');
  const port = Number(flag(args, 'port') ?? env.ATOLL_CONSOLE_PORT ?? 8090);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new UsageError('atoll console: --port must be a port number such as 8090');
  const maxSessions = Number(flag(args, 'max-sessions') ?? env.ATOLL_CONSOLE_MAX_SESSIONS ?? 10_000);
  if (!Number.isInteger(maxSessions) || maxSessions < 1)
    throw new UsageError('atoll console: --max-sessions must be a positive whole number such as 10000');
  const log = createLogger({ level: env.ATOLL_LOG_LEVEL ?? 'info', name: 'atoll-console' });
  const server = await startConsole({
    apiServer,
    ...(caFile ? { caPem: readFileSync(caFile, 'utf8') } : {}),
    host: flag(args, 'host') ?? env.ATOLL_CONSOLE_HOST ?? '127.0.0.1',
    port,
    ...(certFile && keyFile
      ? { tls: { certPem: readFileSync(certFile, 'utf8'), keyPem: readFileSync(keyFile, 'utf8') } }
      : {}),
    maxSessions,
    log,
  });
  log.info({ url: server.url }, 'console started');
  process.stderr.write(`atoll console: ${server.url}\n`);
  await waitForSignal();
  await server.close();
  return 0;
}
