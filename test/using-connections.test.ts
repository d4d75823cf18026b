import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import type { ExternalConnection } from '../src/api/v1alpha1/index.js';
import type { KubeObject } from '../src/kube/client.js';
import { ExternalConnections, RoleBindings, Roles, ServiceAccounts } from '../src/kube/resources.js';
import { packageRoot } from '../src/dev/binaries.js';
import {
  admin,
  condition,
  createWorkspace,
  devState,
  eventually,
  kubectl,
  randomSecret,
  uniqueName,
} from './support/cluster.js';

/**
 * docs/using-connections.md, followed: the workload manifests in
 * config/samples/workloads are accepted by the real API server (server-side
 * dry run), and the agent runs with the flags those manifests give it,
 * against the dev gateway, with a real projected-audience token.
 */

type Conn = ExternalConnection & KubeObject;
interface Container {
  name: string;
  args?: string[];
  restartPolicy?: string;
  volumeMounts?: Array<{ name: string; mountPath: string }>;
}
interface PodSpec {
  serviceAccountName?: string;
  initContainers?: Container[];
  containers: Container[];
  volumes?: Array<{
    name: string;
    emptyDir?: { medium?: string };
    projected?: { sources: Array<{ serviceAccountToken?: { audience: string; path: string } }> };
  }>;
}
type Workload = KubeObject & { spec: { template: { spec: PodSpec } } };

const dir = path.join(packageRoot(), 'config', 'samples', 'workloads');

function samples(ns: string): KubeObject[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .flatMap((f) => parseAllDocuments(readFileSync(path.join(dir, f), 'utf8')).map((d) => d.toJS() as KubeObject))
    .filter(Boolean)
    .map((o) => JSON.parse(JSON.stringify(o).replaceAll('"namespace":"acme"', `"namespace":"${ns}"`)) as KubeObject);
}

function workload(objects: KubeObject[], kind: string, name: string): Workload {
  return objects.find((o) => o.kind === kind && o.metadata?.name === name) as Workload;
}

/** The agent container's flags, as --name=value pairs. */
function agentFlags(pod: PodSpec): Map<string, string[]> {
  const agent = pod.initContainers?.find((c) => c.name === 'atoll-agent');
  expect(agent?.args?.[0]).toBe('agent');
  const out = new Map<string, string[]>();
  for (const a of agent!.args!.slice(1)) {
    const [k, v = 'true'] = a.replace(/^--/, '').split(/=(.*)/s);
    out.set(k!, [...(out.get(k!) ?? []), v]);
  }
  return out;
}

function tokenAudience(pod: PodSpec, mountPath: string): string | undefined {
  const agent = pod.initContainers!.find((c) => c.name === 'atoll-agent')!;
  const mount = agent.volumeMounts!.find((m) => mountPath.startsWith(m.mountPath + '/'))!;
  return pod.volumes!.find((v) => v.name === mount.name)?.projected?.sources.find((s) => s.serviceAccountToken)
    ?.serviceAccountToken?.audience;
}

describe('using a connection from a workload (config/samples/workloads)', () => {
  const ns = uniqueName('workloads');
  const password = randomSecret('ordersdb');
  let objects: KubeObject[];

  beforeAll(async () => {
    await createWorkspace(ns, { policy: { egress: { allowCIDRs: ['127.0.0.0/8'] } } });
    objects = samples(ns);
    await admin().create(ExternalConnections, {
      metadata: { name: 'orders-db', namespace: ns },
      spec: {
        type: 'postgresql',
        settings: { host: '127.0.0.1', port: 9, user: 'orders_app' },
        credentials: { password: { value: password } },
      },
    } as never);
    await eventually(
      'orders-db sealed',
      () => admin().get<Conn>(ExternalConnections, 'orders-db', ns),
      (c) => condition(c, 'CredentialsSealed')?.status === 'True',
    );
    // The ServiceAccounts and RBAC from the samples, for real: the agent below runs as orders-worker.
    for (const o of objects) {
      const t = { ServiceAccount: ServiceAccounts, Role: Roles, RoleBinding: RoleBindings }[o.kind as string];
      if (t) await admin().apply(t, o, { fieldManager: 'samples' });
    }
  });

  it('every manifest passes a server-side dry run against the real API server', async () => {
    const out = await kubectl(['apply', '--server-side', '--dry-run=server', '-f', '-'], {
      input: objects.map((o) => stringify(o)).join('---\n'),
    });
    expect(out.code, out.stderr).toBe(0);
    for (const o of objects) expect(out.stdout).toContain(`${o.metadata!.name}`);
  });

  it('the sidecar is native (restartPolicy: Always) and writes to a memory-backed emptyDir', () => {
    const pod = workload(objects, 'Deployment', 'orders-worker').spec.template.spec;
    const agent = pod.initContainers!.find((c) => c.name === 'atoll-agent')!;
    expect(agent.restartPolicy).toBe('Always');
    const flags = agentFlags(pod);
    const mount = agent.volumeMounts!.find((m) => m.mountPath === flags.get('dir')![0])!;
    expect(pod.volumes!.find((v) => v.name === mount.name)?.emptyDir?.medium).toBe('Memory');
    expect(tokenAudience(pod, flags.get('token-file')![0]!)).toBe('atoll-gateway');
  });

  for (const [kind, name, once] of [
    ['Job', 'orders-report', true],
    ['Deployment', 'orders-worker', false],
  ] as const) {
    it(`the agent with the ${kind}'s flags writes orders-db's password${once ? ' once and exits 0' : ' and keeps running'}`, async () => {
      const pod = workload(objects, kind, name).spec.template.spec;
      const flags = agentFlags(pod);
      expect(flags.has('once')).toBe(once);
      expect(tokenAudience(pod, flags.get('token-file')![0]!)).toBe('atoll-gateway');
      // The kubelet's part, done by hand: a token for the Pod's ServiceAccount with the projected audience.
      const review = await admin().request<{ status: { token: string } }>(
        'POST',
        `/api/v1/namespaces/${ns}/serviceaccounts/${pod.serviceAccountName}/token`,
        {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenRequest',
          spec: { audiences: [tokenAudience(pod, flags.get('token-file')![0]!)], expirationSeconds: 600 },
        },
      );
      const work = mkdtempSync(path.join(tmpdir(), 'atoll-agent-'));
      const tokenFile = path.join(work, 'token');
      writeFileSync(tokenFile, review.status.token, { mode: 0o600 });
      // The manifest's flags, with the in-cluster paths and addresses swapped for this machine's (the dev gateway and its CA).
      const args: string[] = ['agent'];
      expect(flags.has('ca-file')).toBe(true);
      for (const [k, values] of flags) {
        for (const v of values) {
          const local =
            {
              gateway: devState().gateway.url,
              'token-file': tokenFile,
              dir: path.join(work, 'credentials'),
              'ca-file': devState().gateway.caFile,
            }[k] ?? v;
          args.push(v === 'true' && k === 'once' ? `--${k}` : `--${k}=${local}`);
        }
      }
      const child = spawn(process.execPath, [path.join(packageRoot(), 'dist', 'main.js'), ...args], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (c: Buffer) => (output += c.toString()));
      child.stderr.on('data', (c: Buffer) => (output += c.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      const file = path.join(work, 'credentials', 'orders-db', 'password');
      try {
        if (once) {
          expect(await exited, output).toBe(0);
        } else {
          await eventually(
            'password file written',
            async () => existsSync(file),
            (x) => x,
            20_000,
          );
          expect(child.exitCode).toBeNull();
        }
        expect(readFileSync(file, 'utf8')).toBe(password);
        expect(output).not.toContain(password);
      } finally {
        if (child.exitCode === null) {
          child.kill('SIGTERM');
          await exited;
        }
      }
    });
  }
});
