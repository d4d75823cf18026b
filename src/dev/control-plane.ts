import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { KubeClient } from '../kube/client.js';
import { kubeconfigFromString } from '../kube/kubeconfig.js';
import { createCertificate, createCertificateAuthority, type KeyPairPem } from '../kube/x509.js';
import { ensureControlPlaneBinaries, type ControlPlaneBinaries } from './binaries.js';
import { freePort, waitFor } from './ports.js';

export interface ControlPlaneOptions {
  /** Where data, certs and logs go; a fresh temp dir by default (removed on stop). */
  dir?: string;
  /** Run kube-controller-manager (garbage collection, namespace deletion). Default true. */
  controllerManager?: boolean;
  /** Progress lines (binary builds, readiness) go here. */
  onProgress?: (line: string) => void;
}

export const SERVICE_ACCOUNT_ISSUER = 'https://kubernetes.default.svc.cluster.local';

/** Common name of the client certificate kube-apiserver presents to admission webhooks. */
export const WEBHOOK_CLIENT_NAME = 'kube-apiserver-webhook-client';

/**
 * A real control plane on loopback: etcd, kube-apiserver with secure serving,
 * RBAC, client-certificate auth from a generated CA and a service-account
 * signer (so TokenRequest and TokenReview work), and optionally
 * kube-controller-manager. Used by the integration tests and by `atoll dev`.
 */
export class ControlPlane {
  readonly etcdEndpoint: string;
  readonly server: string;
  readonly adminKubeconfigPath: string;
  /**
   * CA of the client certificate kube-apiserver presents to webhooks (its own
   * CA, not the one that signs users: no tenant holds a certificate from it).
   */
  readonly webhookClientCAPath: string;
  private etcdProc: ChildProcess | undefined;
  private apiProc: ChildProcess | undefined;
  private kcmProc: ChildProcess | undefined;
  private readonly ownsDir: boolean;

  private constructor(
    readonly dir: string,
    readonly binaries: ControlPlaneBinaries,
    readonly ca: KeyPairPem,
    private readonly ports: { etcd: number; etcdPeer: number; api: number },
    ownsDir: boolean,
    private readonly progress: (line: string) => void,
  ) {
    this.ownsDir = ownsDir;
    this.etcdEndpoint = `http://127.0.0.1:${ports.etcd}`;
    this.server = `https://127.0.0.1:${ports.api}`;
    this.adminKubeconfigPath = path.join(dir, 'admin.kubeconfig');
    this.webhookClientCAPath = path.join(dir, 'pki', 'webhook-client-ca.crt');
  }

  static async start(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
    const progress = opts.onProgress ?? (() => {});
    const binaries = ensureControlPlaneBinaries();
    const ownsDir = !opts.dir;
    const dir = opts.dir ?? mkdtempSync(path.join(tmpdir(), 'atoll-cp-'));
    mkdirSync(path.join(dir, 'pki'), { recursive: true });
    const ports = { etcd: await freePort(), etcdPeer: await freePort(), api: await freePort() };
    const ca = createCertificateAuthority({ commonName: 'atoll-test-ca' });
    const cp = new ControlPlane(dir, binaries, ca, ports, ownsDir, progress);
    cp.writePki();
    try {
      await cp.startEtcd();
      await cp.startApiServer();
      if (opts.controllerManager !== false && binaries.kubeControllerManager) await cp.startControllerManager();
    } catch (err) {
      await cp.stop();
      throw err;
    }
    return cp;
  }

  private pki(name: string): string {
    return path.join(this.dir, 'pki', name);
  }

  private writePki(): void {
    writeFileSync(this.pki('ca.crt'), this.ca.certPem);
    writeFileSync(this.pki('ca.key'), this.ca.keyPem, { mode: 0o600 });
    const serving = createCertificate({
      issuer: this.ca,
      commonName: 'kube-apiserver',
      dnsNames: ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc'],
      ipAddresses: ['127.0.0.1'],
      usage: 'server',
    });
    writeFileSync(this.pki('apiserver.crt'), serving.certPem);
    writeFileSync(this.pki('apiserver.key'), serving.keyPem, { mode: 0o600 });
    const sa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    writeFileSync(this.pki('sa.key'), sa.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    writeFileSync(this.pki('sa.pub'), sa.publicKey.export({ type: 'spki', format: 'pem' }));
    writeFileSync(this.adminKubeconfigPath, this.kubeconfigFor('atoll-admin', ['system:masters']), { mode: 0o600 });
    this.writeWebhookClientAuth();
  }

  /**
   * kube-apiserver authenticates to admission webhooks with a client
   * certificate ("Authenticate apiservers" in the Kubernetes docs): an
   * AdmissionConfiguration points both webhook plugins at a kubeconfig whose
   * `*` user holds the certificate.
   */
  private writeWebhookClientAuth(): void {
    const ca = createCertificateAuthority({ commonName: 'atoll-webhook-client-ca' });
    const client = createCertificate({ issuer: ca, commonName: WEBHOOK_CLIENT_NAME, usage: 'client' });
    writeFileSync(this.webhookClientCAPath, ca.certPem);
    writeFileSync(this.pki('webhook-client.crt'), client.certPem);
    writeFileSync(this.pki('webhook-client.key'), client.keyPem, { mode: 0o600 });
    writeFileSync(
      this.pki('webhook-client.kubeconfig'),
      stringify({
        apiVersion: 'v1',
        kind: 'Config',
        users: [
          {
            name: '*',
            user: {
              'client-certificate': this.pki('webhook-client.crt'),
              'client-key': this.pki('webhook-client.key'),
            },
          },
        ],
      }),
      { mode: 0o600 },
    );
    const webhookConfig = {
      apiVersion: 'apiserver.config.k8s.io/v1',
      kind: 'WebhookAdmissionConfiguration',
      kubeConfigFile: this.pki('webhook-client.kubeconfig'),
    };
    writeFileSync(
      this.pki('admission-config.yaml'),
      stringify({
        apiVersion: 'apiserver.config.k8s.io/v1',
        kind: 'AdmissionConfiguration',
        plugins: [
          { name: 'ValidatingAdmissionWebhook', configuration: webhookConfig },
          { name: 'MutatingAdmissionWebhook', configuration: webhookConfig },
        ],
      }),
    );
  }

  /** A kubeconfig (YAML) authenticating as `user` in `groups` with a client certificate. */
  kubeconfigFor(user: string, groups: string[] = []): string {
    const cert = createCertificate({ issuer: this.ca, commonName: user, organizations: groups, usage: 'client' });
    return stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        { name: 'atoll', cluster: { server: this.server, 'certificate-authority-data': b64(this.ca.certPem) } },
      ],
      users: [
        { name: user, user: { 'client-certificate-data': b64(cert.certPem), 'client-key-data': b64(cert.keyPem) } },
      ],
      contexts: [{ name: 'atoll', context: { cluster: 'atoll', user } }],
      'current-context': 'atoll',
    });
  }

  /** Writes a user's kubeconfig to a file (for kubectl) and returns its path. */
  writeKubeconfigFor(user: string, groups: string[] = []): string {
    const file = path.join(this.dir, `${user.replace(/[^a-zA-Z0-9_.-]/g, '_')}.kubeconfig`);
    writeFileSync(file, this.kubeconfigFor(user, groups), { mode: 0o600 });
    return file;
  }

  /** A client acting as a given user (client certificate, so RBAC is real). */
  clientFor(user: string, groups: string[] = []): KubeClient {
    return new KubeClient(kubeconfigFromString(this.kubeconfigFor(user, groups)));
  }

  /** A client with a bearer token (e.g. from TokenRequest). */
  clientWithToken(token: string): KubeClient {
    return new KubeClient(
      kubeconfigFromString(
        stringify({
          apiVersion: 'v1',
          kind: 'Config',
          clusters: [
            { name: 'atoll', cluster: { server: this.server, 'certificate-authority-data': b64(this.ca.certPem) } },
          ],
          users: [{ name: 'token', user: { token } }],
          contexts: [{ name: 'atoll', context: { cluster: 'atoll', user: 'token' } }],
          'current-context': 'atoll',
        }),
      ),
    );
  }

  /**
   * A client acting as a ServiceAccount, with a token from the real
   * TokenRequest API: runs a component with exactly the RBAC it ships with.
   */
  async serviceAccountClient(namespace: string, name: string, expirationSeconds = 7 * 24 * 3600): Promise<KubeClient> {
    const review = await this.adminClient().request<{ status: { token: string } }>(
      'POST',
      `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`,
      {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: { expirationSeconds },
      },
    );
    return this.clientWithToken(review.status.token);
  }

  adminClient(): KubeClient {
    return KubeClient.fromKubeconfigFile(this.adminKubeconfigPath);
  }

  private spawnLogged(name: string, bin: string, args: string[]): ChildProcess {
    const log = createWriteStream(path.join(this.dir, `${name}.log`), { flags: 'a' });
    // Own process group: a Ctrl-C in the terminal reaches only us, and we stop the
    // control plane in order (API server before etcd) instead of all at once.
    const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    proc.stdout?.pipe(log);
    proc.stderr?.pipe(log);
    killOnExit.add(proc);
    proc.on('exit', () => killOnExit.delete(proc));
    return proc;
  }

  /** Starts (or restarts, on its data and ports) etcd. */
  async startEtcd(): Promise<void> {
    this.progress(`starting etcd on ${this.etcdEndpoint}`);
    const peer = `http://127.0.0.1:${this.ports.etcdPeer}`;
    this.etcdProc = this.spawnLogged('etcd', this.binaries.etcd, [
      '--name',
      'atoll',
      '--data-dir',
      path.join(this.dir, 'etcd'),
      '--listen-client-urls',
      this.etcdEndpoint,
      '--advertise-client-urls',
      this.etcdEndpoint,
      '--listen-peer-urls',
      peer,
      '--initial-advertise-peer-urls',
      peer,
      '--initial-cluster',
      `atoll=${peer}`,
      '--unsafe-no-fsync',
      '--log-level',
      'warn',
    ]);
    await waitFor('etcd', async () => (await fetch(`${this.etcdEndpoint}/health`)).ok, 30_000);
  }

  /** Starts (or restarts) kube-apiserver on its fixed port. */
  async startApiServer(): Promise<void> {
    this.progress(`starting kube-apiserver on ${this.server}`);
    this.apiProc = this.spawnLogged('kube-apiserver', this.binaries.kubeApiserver, [
      '--etcd-servers',
      this.etcdEndpoint,
      '--bind-address',
      '127.0.0.1',
      '--advertise-address',
      '127.0.0.1',
      '--secure-port',
      String(this.ports.api),
      '--tls-cert-file',
      this.pki('apiserver.crt'),
      '--tls-private-key-file',
      this.pki('apiserver.key'),
      '--client-ca-file',
      this.pki('ca.crt'),
      '--admission-control-config-file',
      this.pki('admission-config.yaml'),
      '--authorization-mode',
      'RBAC',
      '--service-account-issuer',
      SERVICE_ACCOUNT_ISSUER,
      '--service-account-key-file',
      this.pki('sa.pub'),
      '--service-account-signing-key-file',
      this.pki('sa.key'),
      '--api-audiences',
      SERVICE_ACCOUNT_ISSUER,
      '--service-cluster-ip-range',
      '10.0.0.0/24',
      '--endpoint-reconciler-type',
      'none',
      '--enable-priority-and-fairness=false',
      '--profiling=false',
      '--cert-dir',
      path.join(this.dir, 'apiserver-certs'),
      '--v',
      '1',
    ]);
    const admin = this.adminClient();
    const proc = this.apiProc;
    await waitFor(
      'kube-apiserver /readyz',
      async () => {
        if (proc.exitCode !== null)
          throw new FatalStartError(
            `kube-apiserver exited with code ${proc.exitCode}: ${this.logTail('kube-apiserver')}`,
          );
        await admin.requestText('GET', '/readyz');
        return true;
      },
      120_000,
      250,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${this.logTail('kube-apiserver')}`, { cause: err });
    });
    // RBAC bootstrap (default ClusterRoles) finishes just after readyz on a fresh etcd.
    await waitFor(
      'RBAC bootstrap roles',
      async () => {
        await admin.request('GET', '/apis/rbac.authorization.k8s.io/v1/clusterroles/admin');
        return true;
      },
      60_000,
      250,
    );
  }

  /** Last lines of a component's log, for start-up failures. */
  logTail(name: string, lines = 15): string {
    try {
      return readFileSync(path.join(this.dir, `${name}.log`), 'utf8')
        .trimEnd()
        .split('\n')
        .slice(-lines)
        .join('\n');
    } catch {
      return '';
    }
  }

  /** Kills etcd (SIGKILL: no clean shutdown), keeping its data dir, for recovery tests. */
  async killEtcd(): Promise<void> {
    const proc = this.etcdProc;
    this.etcdProc = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill('SIGKILL');
    await exited;
  }

  /** Stops kube-apiserver only (tests of recovery); etcd keeps its data. */
  async stopApiServer(): Promise<void> {
    await stopProcess(this.apiProc);
    this.apiProc = undefined;
  }

  /**
   * Starts kube-controller-manager. Its garbage collector discovers resource
   * types every 30 s, so callers that install CRDs start it afterwards.
   * `controllers` narrows what it runs; atoll always needs `resourcequota`
   * (usage of each workspace's connection quota; without it the API server
   * refuses every new connection).
   */
  async startControllerManager(
    controllers = ['garbagecollector', 'namespace', 'serviceaccount', 'clusterrole-aggregation', 'resourcequota'],
  ): Promise<void> {
    if (this.kcmProc || !this.binaries.kubeControllerManager) return;
    this.progress('starting kube-controller-manager');
    this.kcmProc = this.spawnLogged('kube-controller-manager', this.binaries.kubeControllerManager, [
      '--kubeconfig',
      this.adminKubeconfigPath,
      '--controllers',
      controllers.join(','),
      '--leader-elect=false',
      '--secure-port',
      '0',
      '--use-service-account-credentials=false',
      '--concurrent-gc-syncs',
      '5',
      '--v',
      '1',
    ]);
  }

  async stop(): Promise<void> {
    await stopProcess(this.kcmProc);
    await stopProcess(this.apiProc);
    await stopProcess(this.etcdProc);
    if (this.ownsDir && !process.env.ATOLL_KEEP_CONTROL_PLANE) rmSync(this.dir, { recursive: true, force: true });
  }
}

class FatalStartError extends Error {
  override readonly name = 'FatalStartError';
}

const killOnExit = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of killOnExit) p.kill('SIGKILL');
});

async function stopProcess(proc: ChildProcess | undefined): Promise<void> {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

function b64(s: string): string {
  return Buffer.from(s).toString('base64');
}
