import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Root of the atoll package, from src/ (vitest) or dist/ (compiled). */
export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('package root not found');
    dir = up;
  }
  return dir;
}

export interface ControlPlaneBinaries {
  etcd: string;
  kubeApiserver: string;
  kubeControllerManager?: string;
  kubernetesVersion: string;
}

/** Versions pinned in hack/versions.env, the single source of truth. */
export function pinnedVersions(): Record<string, string> {
  const text = readFileSync(path.join(packageRoot(), 'hack', 'versions.env'), 'utf8');
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

/**
 * Finds etcd and kube-apiserver: KUBEBUILDER_ASSETS first (the envtest
 * convention), then our version-stamped cache, building into it if needed.
 */
export function ensureControlPlaneBinaries(opts: { build?: boolean } = {}): ControlPlaneBinaries {
  const v = pinnedVersions();
  const assets = process.env.KUBEBUILDER_ASSETS;
  if (assets && existsSync(path.join(assets, 'kube-apiserver')) && existsSync(path.join(assets, 'etcd'))) {
    const kcm = path.join(assets, 'kube-controller-manager');
    let version = 'unknown';
    try {
      version = execFileSync(path.join(assets, 'kube-apiserver'), ['--version'], { encoding: 'utf8' })
        .trim()
        .replace(/^Kubernetes\s+/, '');
    } catch {
      /* informational only */
    }
    return {
      etcd: path.join(assets, 'etcd'),
      kubeApiserver: path.join(assets, 'kube-apiserver'),
      kubeControllerManager: existsSync(kcm) ? kcm : undefined,
      kubernetesVersion: version,
    };
  }
  const cache = process.env.ATOLL_CACHE_DIR ?? path.join(homedir(), '.cache', 'atoll');
  const k8s = path.join(cache, 'bin', `kubernetes-v${v.KUBERNETES_VERSION}`);
  const etcd = path.join(cache, 'bin', `etcd-v${v.ETCD_VERSION}`, 'etcd');
  const wanted = [etcd, path.join(k8s, 'kube-apiserver'), path.join(k8s, 'kube-controller-manager')];
  if (!wanted.every((f) => existsSync(f))) {
    if (opts.build === false)
      throw new Error('control-plane binaries are missing: run `bash hack/build-control-plane.sh`');
    const r = spawnSync('bash', [path.join(packageRoot(), 'hack', 'build-control-plane.sh')], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error('building the control-plane binaries failed (see output above)');
  }
  return {
    etcd,
    kubeApiserver: path.join(k8s, 'kube-apiserver'),
    kubeControllerManager: path.join(k8s, 'kube-controller-manager'),
    kubernetesVersion: `v${v.KUBERNETES_VERSION}`,
  };
}
