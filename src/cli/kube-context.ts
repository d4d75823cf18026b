import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { KubeClient } from '../kube/client.js';
import { flag, UsageError, type ParsedArgs } from './args.js';

const IN_CLUSTER_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/** Client for CLI commands: --kubeconfig, then KUBECONFIG / ~/.kube/config / in-cluster. */
export function cliClient(args: ParsedArgs): { client: KubeClient; namespace: string } {
  const kc = new KubeConfig();
  const file = flag(args, 'kubeconfig');
  if (file) {
    if (!existsSync(file)) throw new UsageError(`--kubeconfig ${file}: no such file`);
    kc.loadFromFile(file);
  } else {
    requireSomeKubeconfig();
    kc.loadFromDefault();
  }
  if (!kc.getCurrentCluster())
    throw new UsageError(
      `the kubeconfig has no current context with a cluster: run kubectl config use-context <name>, or pass --kubeconfig`,
    );
  const ctxNs = kc.getContextObject(kc.getCurrentContext())?.namespace;
  return { client: new KubeClient(kc), namespace: flag(args, 'namespace') ?? ctxNs ?? 'default' };
}

/**
 * Without any kubeconfig the client library falls back to http://localhost:8080
 * and fails with a TLS-option message; say what is actually missing instead.
 */
function requireSomeKubeconfig(): void {
  const env = process.env.KUBECONFIG?.split(path.delimiter).filter(Boolean) ?? [];
  if (env.length > 0) {
    if (!env.some((f) => existsSync(f)))
      throw new UsageError(
        `KUBECONFIG names ${env.join(path.delimiter)}, which does not exist: point it at a kubeconfig file (after \`atoll dev\`, use the export line it prints)`,
      );
    return;
  }
  if (existsSync(path.join(homedir(), '.kube', 'config'))) return;
  if (process.env.KUBERNETES_SERVICE_HOST && existsSync(IN_CLUSTER_TOKEN)) return;
  throw new UsageError(
    'no kubeconfig found: set KUBECONFIG, pass --kubeconfig <file>, or create ~/.kube/config (with `atoll dev` running, use the `export KUBECONFIG=...` line it printed)',
  );
}
