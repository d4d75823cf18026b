import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Agent, request } from 'undici';
import type { KubeClient, KubeObject } from '../../../src/kube/client.js';
import { KubeApiError } from '../../../src/kube/errors.js';
import { ExternalConnections } from '../../../src/kube/resources.js';
import type { Random } from './random.js';
import type { ChaosWorld, ConnectionRef } from './world.js';

/** Every value the workload writes: a marker no ciphertext or object field contains by chance, then 24 random hex digits. */
export const VALUE_MARKER = 'zqchaoskey';
export const VALUE_PATTERN = new RegExp(`${VALUE_MARKER}[0-9a-f]{24}`, 'g');

/**
 * What the workload wrote, per connection: every value it ever sent (so a
 * value seen anywhere can be judged "ours" or corrupted) and the last one
 * the API server confirmed. A write whose answer was lost (the API server or
 * etcd went away mid-request) may or may not have landed: the connection is
 * marked unsettled and written again once the faults are over. Writes carry
 * the resourceVersion they read, so a late-landing old write cannot overtake
 * a newer one.
 */
export class Ledger {
  readonly attempted = new Map<string, Set<string>>();
  readonly confirmed = new Map<string, string>();
  readonly unsettled = new Set<string>();
  counts = { confirmed: 0, failed: 0 };
  /** When the API server last confirmed a write (epoch ms). */
  lastConfirmedAt = 0;

  constructor(private readonly random: Random) {}

  newValue(): string {
    return `${VALUE_MARKER}${this.random.hex(12)}`;
  }

  initial(ref: ConnectionRef): string {
    const v = this.newValue();
    this.attempted.set(ref.key, new Set([v]));
    this.confirmed.set(ref.key, v);
    return v;
  }

  allValues(): Set<string> {
    const all = new Set<string>();
    for (const s of this.attempted.values()) for (const v of s) all.add(v);
    return all;
  }

  /** Whether `value` was ever written to this connection (anything else is corruption). */
  isOurs(key: string, value: string): boolean {
    return this.attempted.get(key)?.has(value) ?? false;
  }

  /** One rotation: read, then write the new value with the resourceVersion read. True when the API server confirmed it. */
  async rotate(admin: KubeClient, ref: ConnectionRef): Promise<boolean> {
    const value = this.newValue();
    this.attempted.get(ref.key)!.add(value);
    try {
      const current = await admin.get<KubeObject>(ExternalConnections, ref.name, ref.namespace);
      await admin.mergePatch(ExternalConnections, ref.name, ref.namespace, {
        metadata: { resourceVersion: current.metadata?.resourceVersion },
        spec: { credentials: { apiKey: { value, sealed: null } } },
      });
      this.confirmed.set(ref.key, value);
      this.lastConfirmedAt = Date.now();
      this.unsettled.delete(ref.key);
      this.counts.confirmed++;
      return true;
    } catch (err) {
      this.counts.failed++;
      // A definite refusal (409 stale read, 4xx from admission) changed nothing; anything else might have landed.
      const definite = err instanceof KubeApiError && err.status >= 400 && err.status < 500;
      if (!definite) this.unsettled.add(ref.key);
      return false;
    }
  }
}

/** A client for the gateway as the workloads call it (HTTPS with its CA, each workspace's ServiceAccount token). */
export class GatewayCaller {
  private readonly dispatcher: Agent;
  private seq = 0;
  counts = { ok: 0, failed: 0 };

  constructor(private readonly world: ChaosWorld) {
    this.dispatcher = new Agent({
      connect: { ca: world.gateway.caPem },
      headersTimeout: 20_000,
      bodyTimeout: 20_000,
      connectTimeout: 5_000,
    });
  }

  /** Calls the connection's API through the gateway; resolves to the call id the upstream recorded (or undefined on failure). */
  async call(ref: ConnectionRef): Promise<string | undefined> {
    const id = `c${++this.seq}`;
    try {
      const res = await request(`${this.world.gateway.url}/v1/connections/${ref.name}/proxy/items?call=${id}`, {
        dispatcher: this.dispatcher,
        headers: { authorization: `Bearer ${this.world.tokens.get(ref.namespace)}` },
      });
      await res.body.text();
      if (res.statusCode === 200) {
        this.counts.ok++;
        return id;
      }
    } catch {
      /* counted below */
    }
    this.counts.failed++;
    return undefined;
  }

  /** The key the upstream received for call `id`. */
  received(id: string): string | undefined {
    return this.world.upstream.received.find((r) => r.call === id)?.apiKey;
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }
}

export function agentFile(world: ChaosWorld, ref: ConnectionRef): string {
  return path.join(world.agentsDir, ref.namespace, ref.name, 'apiKey');
}

export async function readAgentFile(world: ChaosWorld, ref: ConnectionRef): Promise<string | undefined> {
  return readFile(agentFile(world, ref), 'utf8').catch(() => undefined);
}

/** Values seen somewhere (upstream, agent file) that were never written to that connection. */
export interface Corruption {
  where: 'gateway' | 'agent';
  connection: string;
}

/**
 * The two workloads of the chaos run, until stopped: one rotates credentials
 * of random connections across the workspaces, the other calls random
 * connections through the gateway; meanwhile every agent file is sampled.
 * Everything any of them sees is judged against the ledger.
 */
export function runWorkload(
  world: ChaosWorld,
  ledger: Ledger,
  random: Random,
): { stop(): Promise<void>; corruptions: Corruption[]; caller: GatewayCaller; stats(): string } {
  let running = true;
  const corruptions: Corruption[] = [];
  const caller = new GatewayCaller(world);
  const inFlight = new Set<string>();
  const writerRandom = random.fork('writer');
  const callerRandom = random.fork('caller');
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  let checkedUpstream = 0;

  const writer = async () => {
    while (running) {
      const ref = writerRandom.pick(world.connections);
      if (!inFlight.has(ref.key)) {
        inFlight.add(ref.key);
        await ledger.rotate(world.admin, ref);
        inFlight.delete(ref.key);
      }
      await sleep(writerRandom.int(200, 600));
    }
  };
  const callerLoop = async () => {
    while (running) {
      await caller.call(callerRandom.pick(world.connections));
      await sleep(callerRandom.int(100, 400));
    }
  };
  const sampler = async () => {
    while (running) {
      for (const r of world.upstream.received.slice(checkedUpstream)) {
        if (!ledger.isOurs(r.connection, r.apiKey)) corruptions.push({ where: 'gateway', connection: r.connection });
      }
      checkedUpstream = world.upstream.received.length;
      for (const ref of world.connections) {
        const v = await readAgentFile(world, ref);
        if (v !== undefined && !ledger.isOurs(ref.key, v)) corruptions.push({ where: 'agent', connection: ref.key });
      }
      await sleep(2_000);
    }
  };
  const loops = [writer(), writer(), callerLoop(), callerLoop(), sampler()];
  return {
    corruptions,
    caller,
    stats: () =>
      `writes ${ledger.counts.confirmed} confirmed / ${ledger.counts.failed} failed, gateway calls ${caller.counts.ok} ok / ${caller.counts.failed} failed`,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}
