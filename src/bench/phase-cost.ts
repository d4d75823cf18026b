/**
 * What a benchmark phase cost each process and the API server: CPU seconds
 * per process from /proc/<pid>/stat (utime + stime, children excluded), and
 * the API server's own request and admission-webhook counters. On a machine
 * shared with other work, wall-clock time says how much CPU the kernel handed
 * out; CPU seconds per connection say what each part needs.
 */
import { readFileSync } from 'node:fs';
import type { KubeClient } from '../kube/client.js';

/** Linux's USER_HZ: /proc reports CPU time in these ticks (100 on every mainstream kernel). */
const TICKS_PER_SECOND = 100;

/** CPU seconds (user + system) a process has used so far, its children not counted; NaN once it is gone. */
export function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses: fields are counted from the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state), so utime (14) and stime (15) are at 11 and 12.
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return NaN;
  }
}

export type Pids = Record<string, number | undefined>;

/** CPU seconds of each named process at one moment. */
export function cpuSnapshot(pids: Pids): Record<string, number> {
  return Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuSeconds(pid)]));
}

/**
 * `apiserver_request_total` summed by "VERB resource[/subresource]" (codes and
 * groups folded), plus the admission webhook calls the API server made
 * (`apiserver_admission_webhook_admission_duration_seconds_count`) as
 * "webhook <name> <operation>".
 */
export async function apiRequestCounts(admin: KubeClient): Promise<Record<string, number>> {
  const text = await admin.requestText('GET', '/metrics');
  const out: Record<string, number> = {};
  const add = (key: string, n: number) => (out[key] = (out[key] ?? 0) + n);
  const label = (labels: string, name: string) => new RegExp(`${name}="([^"]*)"`).exec(labels)?.[1] ?? '';
  for (const m of text.matchAll(/^apiserver_request_total\{([^}]*)\}\s+(\S+)$/gm)) {
    const sub = label(m[1]!, 'subresource');
    add(`${label(m[1]!, 'verb')} ${label(m[1]!, 'resource')}${sub ? `/${sub}` : ''}`, Number(m[2]));
  }
  for (const m of text.matchAll(/^apiserver_admission_webhook_admission_duration_seconds_count\{([^}]*)\}\s+(\S+)$/gm))
    add(`webhook ${label(m[1]!, 'name')} ${label(m[1]!, 'operation')}`, Number(m[2]));
  return out;
}

/** A phase's cost: CPU seconds per process and API requests, from `begin` to `end`. */
export interface PhaseCost {
  cpuS: Record<string, number>;
  apiRequests: Record<string, number>;
}

/** Starts measuring a phase; the returned function ends it. */
export async function measurePhase(admin: KubeClient, pids: () => Pids): Promise<() => Promise<PhaseCost>> {
  const cpuBefore = cpuSnapshot(pids());
  const apiBefore = await apiRequestCounts(admin);
  return async () => {
    const cpuAfter = cpuSnapshot(pids());
    const apiAfter = await apiRequestCounts(admin);
    const cpuS = Object.fromEntries(
      Object.entries(cpuAfter).map(([name, s]) => [name, round3(s - (cpuBefore[name] ?? NaN))]),
    );
    const apiRequests = Object.fromEntries(
      Object.entries(apiAfter)
        .map(([k, v]) => [k, v - (apiBefore[k] ?? 0)] as const)
        .filter(([, v]) => v > 0)
        .sort((a, b) => b[1] - a[1]),
    );
    return { cpuS, apiRequests };
  };
}

function round3(n: number): number {
  return Number.isFinite(n) ? Math.round(n * 1000) / 1000 : NaN;
}
