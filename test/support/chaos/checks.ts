import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { KubeObject } from '../../../src/kube/client.js';
import { ExternalConnections } from '../../../src/kube/resources.js';
import { readAgentFile, VALUE_PATTERN, type GatewayCaller, type Ledger } from './workload.js';
import type { ChaosWorld, ConnectionRef } from './world.js';

type Connection = KubeObject & {
  status?: { conditions?: Array<{ type: string; status: string; observedGeneration?: number }> };
};

/** Why one connection is not (yet) where it must end up; undefined when it is. */
export async function connectionProblem(
  world: ChaosWorld,
  ledger: Ledger,
  caller: GatewayCaller,
  ref: ConnectionRef,
): Promise<string | undefined> {
  const want = ledger.confirmed.get(ref.key)!;
  const conn = await world.admin.get<Connection>(ExternalConnections, ref.name, ref.namespace).catch(() => undefined);
  if (!conn) return 'cannot read the connection';
  const sealed = conn.status?.conditions?.find((c) => c.type === 'CredentialsSealed');
  if (sealed?.status !== 'True' || sealed.observedGeneration !== conn.metadata?.generation) {
    return `CredentialsSealed=${sealed?.status ?? 'missing'} at generation ${sealed?.observedGeneration ?? '-'} (current ${conn.metadata?.generation})`;
  }
  const id = await caller.call(ref);
  const injected = id ? caller.received(id) : undefined;
  if (injected !== want)
    return injected === undefined
      ? 'the gateway call failed'
      : `the gateway injected ${ledger.isOurs(ref.key, injected) ? 'an older value' : 'a value never written to it'}`;
  const file = await readAgentFile(world, ref);
  if (file !== want)
    return file === undefined
      ? 'the agent file is missing'
      : `the agent file holds ${ledger.isOurs(ref.key, file) ? 'an older value' : 'a value never written to it'}`;
  return undefined;
}

/** Checks every connection, a few at a time; the map holds the ones not where they must be. */
export async function problems(
  world: ChaosWorld,
  ledger: Ledger,
  caller: GatewayCaller,
  refs = world.connections,
): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const queue = [...refs];
  const worker = async () => {
    for (let ref = queue.shift(); ref; ref = queue.shift()) {
      const p = await connectionProblem(world, ledger, caller, ref);
      if (p) out.set(ref.key, p);
    }
  };
  await Promise.all(Array.from({ length: 6 }, worker));
  return out;
}

/** Where a workload value was found in etcd: a key of the current keyspace, or a data file (any revision). */
export interface EtcdFinding {
  where: string;
  value: string;
}

/**
 * Workload values found in etcd: in the current keyspace (a range over every
 * key through etcd's v3 JSON gateway, as test/support/cluster.ts's etcdDump)
 * and in every revision etcd still holds on disk (its bbolt database and
 * write-ahead log, read as bytes), so a plaintext that was stored and later
 * overwritten is found too.
 */
export async function valuesInEtcd(
  world: ChaosWorld,
  ours: Set<string>,
): Promise<{ keyspace: EtcdFinding[]; files: EtcdFinding[] }> {
  const res = await fetch(`${world.cp.etcdEndpoint}/v3/kv/range`, {
    method: 'POST',
    body: JSON.stringify({
      key: Buffer.from('\0').toString('base64'),
      range_end: Buffer.from('\0').toString('base64'),
    }),
  });
  const body = (await res.json()) as { kvs?: Array<{ key: string; value?: string }> };
  const keyspace: EtcdFinding[] = [];
  for (const kv of body.kvs ?? []) {
    const text = Buffer.from(kv.value ?? '', 'base64').toString('latin1');
    for (const m of text.matchAll(VALUE_PATTERN))
      if (ours.has(m[0])) keyspace.push({ where: Buffer.from(kv.key, 'base64').toString('latin1'), value: m[0] });
  }
  const files: EtcdFinding[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir)) {
      const p = path.join(dir, entry);
      if (statSync(p).isDirectory()) walk(p);
      else
        for (const value of new Set(
          [...readFileSync(p).toString('latin1').matchAll(VALUE_PATTERN)].map((m) => m[0]).filter((v) => ours.has(v)),
        ))
          files.push({ where: path.relative(world.dir, p), value });
    }
  };
  walk(path.join(world.cp.dir, 'etcd'));
  return { keyspace, files };
}
