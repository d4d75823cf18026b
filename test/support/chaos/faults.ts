import type { Random } from './random.js';
import type { ChaosSize } from './sizes.js';
import type { Toxic } from './toxiproxy.js';
import type { ChaosWorld } from './world.js';

export type NetworkFaultKind = 'latency' | 'blackhole' | 'reset' | 'refused';

export type Fault =
  | { at: number; kind: 'kill'; leader: boolean }
  | { at: number; kind: 'apiserver'; downMs: number }
  | { at: number; kind: 'etcd'; downMs: number }
  | { at: number; kind: 'network'; proxy: 'kubeApi' | 'kms'; fault: NetworkFaultKind; ms: number; latencyMs: number };

export interface FaultPlan {
  faults: Fault[];
  kmsOutage: { at: number; ms: number };
}

/**
 * The whole run's faults, drawn up front from the seed: `at` is ms into the
 * fault window. Kills, restarts and network faults are spread uniformly;
 * the KMS outage sits in the middle of the window.
 */
export function planFaults(size: ChaosSize, random: Random): FaultPlan {
  const window = size.chaosSeconds * 1000;
  const when = () => random.int(2_000, window - 10_000);
  const faults: Fault[] = [];
  for (let i = 0; i < size.kills; i++)
    faults.push({ at: when(), kind: 'kill', leader: random.chance(size.leaderKillShare) });
  for (let i = 0; i < size.apiserverRestarts; i++)
    faults.push({ at: when(), kind: 'apiserver', downMs: random.int(1_000, 8_000) });
  for (let i = 0; i < size.etcdRestarts; i++)
    faults.push({ at: when(), kind: 'etcd', downMs: random.int(1_000, 5_000) });
  for (let i = 0; i < size.networkFaults; i++) {
    faults.push({
      at: when(),
      kind: 'network',
      proxy: random.chance(0.7) ? 'kubeApi' : 'kms',
      fault: random.pick(['latency', 'blackhole', 'reset', 'refused'] as const),
      // Up to 20 s: longer than the 15 s Lease, so a half-open leader must notice before its successor starts.
      ms: random.int(3_000, 20_000),
      latencyMs: random.int(200, 3_000),
    });
  }
  faults.sort((a, b) => a.at - b.at);
  const kmsMs = size.kmsOutageSeconds * 1000;
  const kmsOutage = { at: Math.max(0, Math.round(window / 2 - kmsMs / 2)), ms: kmsMs };
  // Toxiproxy cannot close links to a SIGSTOPped upstream in time (its API answers
  // 503 Timeout), and a fault on a dead KMS tests nothing more: such faults move to
  // the API server's proxy.
  for (const f of faults)
    if (
      f.kind === 'network' &&
      f.proxy === 'kms' &&
      f.at < kmsOutage.at + kmsOutage.ms + 5_000 &&
      f.at + f.ms > kmsOutage.at
    )
      f.proxy = 'kubeApi';
  return { faults, kmsOutage };
}

function toxicFor(fault: NetworkFaultKind, latencyMs: number): Toxic | undefined {
  switch (fault) {
    case 'latency':
      return { type: 'latency', attributes: { latency: latencyMs, jitter: Math.round(latencyMs / 4) } };
    case 'blackhole':
      // timeout 0: data stops, the TCP connection stays open (half-open) until the toxic goes.
      return { type: 'timeout', attributes: { timeout: 0 } };
    case 'reset':
      return { type: 'reset_peer', attributes: { timeout: 0 } };
    case 'refused':
      return undefined;
  }
}

export interface FaultLog {
  kills: number;
  leaderKills: number;
  apiserverRestarts: number;
  etcdRestarts: number;
  networkFaults: number;
  kmsOutageMs: number;
  /** When the last fault was lifted (epoch ms). */
  lastFaultEndedAt: number;
  /** Human-readable, one line per fault, for the failure message. */
  lines: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs the plan against the world: faults one after another (a restart or a
 * network fault lasts its duration; the next waits for it), the KMS outage
 * (moto frozen with SIGSTOP, so calls hang as in a partition, and its keys
 * survive) alongside. `leaderOf` names the replica holding the Lease now.
 */
export async function runFaults(
  world: ChaosWorld,
  plan: FaultPlan,
  leaderIndex: () => number | undefined,
  random: Random,
  say: (line: string) => void,
): Promise<FaultLog> {
  const log: FaultLog = {
    kills: 0,
    leaderKills: 0,
    apiserverRestarts: 0,
    etcdRestarts: 0,
    networkFaults: 0,
    kmsOutageMs: 0,
    lastFaultEndedAt: Date.now(),
    lines: [],
  };
  const t0 = Date.now();
  const note = (line: string) => {
    const entry = `+${((Date.now() - t0) / 1000).toFixed(1)}s (${new Date().toISOString().slice(11, 23)}) ${line}`;
    log.lines.push(entry);
    say(entry);
  };
  const kms = (async () => {
    if (plan.kmsOutage.ms <= 0) return;
    await sleep(Math.max(0, t0 + plan.kmsOutage.at - Date.now()));
    note(`KMS outage begins (moto frozen) for ${plan.kmsOutage.ms / 1000}s`);
    const began = Date.now();
    world.moto.pause();
    await sleep(plan.kmsOutage.ms);
    world.moto.resume();
    log.kmsOutageMs = Date.now() - began;
    log.lastFaultEndedAt = Math.max(log.lastFaultEndedAt, Date.now());
    note('KMS outage ends');
  })();

  for (const f of plan.faults) {
    await sleep(Math.max(0, t0 + f.at - Date.now()));
    switch (f.kind) {
      case 'kill': {
        const leader = leaderIndex();
        const target = f.leader && leader !== undefined ? leader : leader !== undefined ? 1 - leader : random.int(0, 1);
        const proc = world.controllers[target]!;
        // Killed a moment ago (or crash-looping while the API server is away): kill it once it is back.
        const upBy = Date.now() + 30_000;
        while (!proc.current && Date.now() < upBy) await sleep(200);
        const inc = proc.current;
        if (!inc) {
          note(`kill skipped: ${proc.name} did not come back within 30s`);
          continue;
        }
        await proc.kill();
        log.kills++;
        if (target === leader) log.leaderKills++;
        note(`SIGKILL ${inc.id}${target === leader ? ' (leader)' : ''}`);
        break;
      }
      case 'apiserver':
        note(`kube-apiserver stopped for ${f.downMs}ms`);
        await world.cp.stopApiServer();
        await sleep(f.downMs);
        await world.cp.startApiServer();
        log.apiserverRestarts++;
        note('kube-apiserver ready again');
        break;
      case 'etcd':
        note(`etcd SIGKILLed, down for ${f.downMs}ms`);
        await world.cp.killEtcd();
        await sleep(f.downMs);
        await world.cp.startEtcd();
        log.etcdRestarts++;
        note('etcd healthy again');
        break;
      case 'network': {
        const proxy = world.proxies[f.proxy];
        const toxic = toxicFor(f.fault, f.latencyMs);
        note(`network: ${f.fault}${f.fault === 'latency' ? ` ${f.latencyMs}ms` : ''} on ${proxy} for ${f.ms}ms`);
        if (toxic) await world.toxiproxy.addToxic(proxy, 'chaos', toxic);
        else await world.toxiproxy.setEnabled(proxy, false);
        await sleep(f.ms);
        if (toxic) await world.toxiproxy.removeToxic(proxy, 'chaos');
        else await world.toxiproxy.setEnabled(proxy, true);
        log.networkFaults++;
        note(`network: ${proxy} clean again`);
        break;
      }
    }
    log.lastFaultEndedAt = Math.max(log.lastFaultEndedAt, Date.now());
  }
  await kms;
  return log;
}
