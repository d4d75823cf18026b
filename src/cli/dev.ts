import { mkdirSync, renameSync, rmSync, writeFileSync, createWriteStream, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { startOperator } from '../operator.js';
import { createLogger } from '../runtime/logger.js';
import { ControlPlane, WEBHOOK_CLIENT_NAME } from '../dev/control-plane.js';
import { ensureControlPlaneBinaries, packageRoot } from '../dev/binaries.js';
import { freePort } from '../dev/ports.js';
import {
  installAtoll,
  loopbackOperatorConfig,
  OPERATOR_NAMESPACE,
  precreateWebhookConfigurations,
} from '../dev/embedded.js';
import { createCertificate, createCertificateAuthority } from '../kube/x509.js';
import { startGatewayFromConfig } from './gateway.js';
import { startConsole } from '../console/server/server.js';
import { demoMemberToken, signInLink } from '../console/server/demo-member.js';
import { flag, UsageError, type ParsedArgs } from './args.js';
import { startDevVault, type DevVault } from './dev-vault.js';

/**
 * `atoll dev`, the embedded default: a real etcd and kube-apiserver on
 * loopback, the local KMS provider (or, with `--kms vault-transit`, a Vault
 * dev server's Transit engine), CRDs, webhooks, built-in types, the
 * controller, the gateway and the console, in one process. Writes
 * .atoll/dev/state.json.
 */
export async function dev(args: ParsedArgs): Promise<number> {
  const root = packageRoot();
  const kms = flag(args, 'kms') ?? 'local';
  if (kms !== 'local' && kms !== 'vault-transit')
    throw new UsageError('atoll dev --kms must be local or vault-transit');
  const dir = path.resolve(flag(args, 'dir') ?? path.join(root, '.atoll', 'dev'));
  refuseIfRunning(dir);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(path.join(dir, 'cluster'), { recursive: true });
  // Claimed before the slow start-up, so a second `atoll dev` cannot wipe a starting one either.
  writeFileSync(path.join(dir, PID_FILE), `${process.pid}\n`);
  // If whoever started us goes away (closed pipe), keep shutting down cleanly rather than die on EPIPE.
  process.stdout.on('error', () => undefined);
  process.stderr.on('error', () => undefined);
  const say = (line: string) => process.stderr.write(`[atoll dev] ${line}\n`);
  const logFile = path.join(dir, 'atoll.log');
  const log = createLogger({
    level: process.env.ATOLL_LOG_LEVEL ?? 'info',
    destination: createWriteStream(logFile, { flags: 'a' }),
  });

  say(
    controlPlaneCached()
      ? 'starting the control plane (cached binaries)'
      : 'building the control-plane binaries from the Go module proxy (first run only; this takes several minutes)',
  );
  const cp = await ControlPlane.start({ dir: path.join(dir, 'cluster'), onProgress: say, controllerManager: false });
  const client = cp.adminClient();
  let stopping = false;
  let vault: DevVault | undefined;
  try {
    say('installing CRDs, RBAC, the admission policies that fence the operator, and built-in IntegrationTypes');
    await installAtoll(client, root);
    // After the CRDs, so garbage collection and the quota controller (connection limits) know ExternalConnections from the start.
    await cp.startControllerManager();

    const gatewayPort = await freePort();
    if (kms === 'vault-transit') vault = await startDevVault(cp, client, dir, say);
    // The webhook answers only kube-apiserver (its webhook client certificate).
    const webhookClient = {
      ATOLL_WEBHOOK_CLIENT_CA_FILE: cp.webhookClientCAPath,
      ATOLL_WEBHOOK_CLIENT_NAMES: WEBHOOK_CLIENT_NAME,
    };
    const config = loopbackOperatorConfig(
      { ATOLL_LEADER_ELECT: 'true', ...webhookClient, ...vault?.env('controller') },
      process.env,
    );
    const gatewayConfig = vault
      ? loopbackOperatorConfig({ ATOLL_LEADER_ELECT: 'true', ...webhookClient, ...vault.env('gateway') }, process.env)
      : config;
    // Controller and gateway run as their own ServiceAccounts with the RBAC that
    // ships in config/rbac, so least privilege is exercised by every dev session
    // and integration suite, not only asserted. Only the webhook configurations
    // are created up front (in a cluster the chart does that).
    await precreateWebhookConfigurations(client);
    const operator = await startOperator({
      client: await cp.serviceAccountClient(OPERATOR_NAMESPACE, config.serviceAccounts.controller),
      config,
      log: log.child({ component: 'controller' }),
    });
    // The gateway names its own component (log below has none: a second binding would print the key twice).
    // The gateway serves HTTPS here too, from a CA made for this session; clients trust gateway-ca.crt.
    const gatewayCA = createCertificateAuthority({ commonName: 'atoll-dev-gateway-ca' });
    const gatewayCert = createCertificate({
      issuer: gatewayCA,
      commonName: 'localhost',
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
      usage: 'server',
    });
    const gatewayCAFile = path.join(dir, 'gateway-ca.crt');
    writeFileSync(gatewayCAFile, gatewayCA.certPem);
    const gateway = await startGatewayFromConfig({
      client: await cp.serviceAccountClient(OPERATOR_NAMESPACE, config.serviceAccounts.gateway),
      config: gatewayConfig,
      log,
      host: '127.0.0.1',
      port: gatewayPort,
      tls: gatewayCert,
    });
    // The console gets the API server's address and CA, nothing else: it acts with each person's token.
    const consoleServer = await startConsole({
      apiServer: cp.server,
      caPem: cp.ca.certPem,
      host: '127.0.0.1',
      port: await freePort(),
      log: log.child({ component: 'console' }),
    });
    const demo = await demoMemberToken(client);
    const state = {
      kubeconfig: cp.adminKubeconfigPath,
      server: cp.server,
      etcd: { endpoints: [cp.etcdEndpoint] },
      gateway: { url: gateway.url, caFile: gatewayCAFile },
      console: { url: consoleServer.url, demoWorkspace: demo.namespace },
      controller: {
        health: operator.healthURL,
        metrics: `${operator.healthURL}/metrics`,
        webhookPort: operator.webhookPort,
      },
      kms: {
        provider: config.kms.provider,
        keyId: config.kms.defaultKeyId,
        ...(vault
          ? {
              vault: {
                address: vault.server.address,
                caFile: vault.server.caFile,
                rootTokenFile: path.join(dir, 'vault-root-token'),
              },
            }
          : {}),
      },
      kubernetesVersion: cp.binaries.kubernetesVersion,
      log: logFile,
      pid: process.pid,
    };
    // Written aside and renamed: whoever waits for state.json never reads half of it.
    writeFileSync(path.join(dir, 'state.json.tmp'), JSON.stringify(state, null, 2) + '\n');
    renameSync(path.join(dir, 'state.json.tmp'), path.join(dir, 'state.json'));
    say(`ready: Kubernetes ${state.kubernetesVersion} at ${cp.server}`);
    say(`gateway: ${gateway.url}   metrics: ${state.controller.metrics}   logs: ${logFile}`);
    process.stdout.write(`export KUBECONFIG=${cp.adminKubeconfigPath}\n`);
    say(`console: ${consoleServer.url}`);
    say(`sign in to the console as a member of the "${demo.namespace}" workspace (link valid 12 hours):`);
    process.stderr.write(`\n    ${signInLink(consoleServer.url, demo.token, demo.namespace)}\n\n`);
    say('then: kubectl apply -f config/samples/   (Ctrl-C stops everything)');

    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      process.once('SIGHUP', stop);
    });
    stopping = true;
    say('stopping');
    // Graceful, but bounded: the control plane is stopped below whatever happens.
    await Promise.race([
      (async () => {
        await consoleServer.close();
        await gateway.close();
        await operator.stop();
      })(),
      new Promise((r) => setTimeout(r, 15_000).unref()),
    ]);
  } finally {
    if (!stopping) say('start-up failed; stopping the control plane');
    await vault?.server.destroy();
    await cp.stop();
    rmSync(path.join(dir, 'state.json'), { force: true });
    rmSync(path.join(dir, PID_FILE), { force: true });
  }
  return 0;
}

const PID_FILE = 'atoll-dev.pid';

/** A live `atoll dev` owns its directory: starting over it would strand that instance without its kubeconfig. */
function refuseIfRunning(dir: string): void {
  const pid = runningPid(dir);
  if (pid === undefined) return;
  const kubeconfig = path.join(dir, 'cluster', 'admin.kubeconfig');
  const reach = existsSync(path.join(dir, 'state.json'))
    ? `reach it with: export KUBECONFIG=${readState(dir)?.kubeconfig ?? kubeconfig}`
    : 'it is still starting';
  throw new UsageError(
    `atoll dev is already running (pid ${pid}) with state in ${dir}.\n  ${reach}\n  stop it with Ctrl-C in its terminal or: kill ${pid}\n  or start another one elsewhere: atoll dev --dir <other dir>`,
  );
}

function runningPid(dir: string): number | undefined {
  for (const candidate of [Number(readFileOr(path.join(dir, PID_FILE))?.trim()), readState(dir)?.pid]) {
    if (!candidate || !Number.isInteger(candidate) || candidate === process.pid) continue;
    try {
      process.kill(candidate, 0);
      return candidate;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EPERM') return candidate; // alive, someone else's
    }
  }
  return undefined;
}

function readState(dir: string): { pid?: number; kubeconfig?: string } | undefined {
  try {
    return (
      (JSON.parse(readFileOr(path.join(dir, 'state.json')) ?? 'null') as {
        pid?: number;
        kubeconfig?: string;
      } | null) ?? undefined
    );
  } catch {
    return undefined;
  }
}

function readFileOr(file: string): string | undefined {
  return existsSync(file) ? readFileSync(file, 'utf8') : undefined;
}

function controlPlaneCached(): boolean {
  try {
    ensureControlPlaneBinaries({ build: false });
    return true;
  } catch {
    return false;
  }
}
