/**
 * How big a chaos run is. `ci` fits the CI budget (about 4 minutes with
 * start-up); `full` is issue #13's size, run on demand with
 * `ATOLL_CHAOS=full npx vitest run test/chaos.test.ts` (or `npm run chaos:full`);
 * its last summary is recorded in docs/reliability.md.
 */
export interface ChaosSize {
  name: 'ci' | 'full';
  workspaces: number;
  connectionsPerWorkspace: number;
  /** SIGKILLs of a controller replica (the leader with probability leaderKillShare). */
  kills: number;
  leaderKillShare: number;
  apiserverRestarts: number;
  etcdRestarts: number;
  networkFaults: number;
  kmsOutageSeconds: number;
  /** Length of the fault window; the faults are spread over it. */
  chaosSeconds: number;
  /** Bound on start-up (control plane, workspaces, connections, processes). */
  setupTimeoutMs: number;
  /** Bound on delivering every initial value before the first fault (not under test: a loaded machine only needs longer). */
  baselineTimeoutMs: number;
  /** Bound on the test itself (baseline, faults, convergence, checks). */
  timeoutMs: number;
}

export const SIZES: Record<ChaosSize['name'], ChaosSize> = {
  ci: {
    name: 'ci',
    workspaces: 5,
    connectionsPerWorkspace: 8,
    kills: 8,
    leaderKillShare: 0.75,
    apiserverRestarts: 2,
    etcdRestarts: 1,
    networkFaults: 6,
    kmsOutageSeconds: 30,
    chaosSeconds: 120,
    setupTimeoutMs: 300_000,
    baselineTimeoutMs: 120_000,
    timeoutMs: 330_000,
  },
  full: {
    name: 'full',
    workspaces: 20,
    connectionsPerWorkspace: 10,
    kills: 50,
    leaderKillShare: 0.75,
    apiserverRestarts: 10,
    etcdRestarts: 3,
    networkFaults: 30,
    kmsOutageSeconds: 300,
    chaosSeconds: 900,
    setupTimeoutMs: 900_000,
    baselineTimeoutMs: 600_000,
    timeoutMs: 2_400_000,
  },
};

export function chaosSize(env = process.env): ChaosSize {
  const name = env.ATOLL_CHAOS ?? 'ci';
  if (name !== 'ci' && name !== 'full')
    throw new Error(`ATOLL_CHAOS must be ci (default) or full, got ${JSON.stringify(name)}`);
  return SIZES[name];
}
