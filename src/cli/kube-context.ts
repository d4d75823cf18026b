import { existsSync } from 'node:fs';
import { KubeClient } from '../kube/client.js';
import { defaultClusterAccess, kubeconfigAccess, KubeconfigError, type ClusterAccess } from '../kube/kubeconfig.js';
import { flag, UsageError, type ParsedArgs } from './args.js';

/** Client for CLI commands: --kubeconfig, then KUBECONFIG / in-cluster / ~/.kube/config. */
export function cliClient(args: ParsedArgs): { client: KubeClient; namespace: string } {
  const file = flag(args, 'kubeconfig');
  if (file && !existsSync(file)) throw new UsageError(`--kubeconfig ${file}: no such file`);
  let access: ClusterAccess;
  try {
    access = file ? kubeconfigAccess([file]) : defaultClusterAccess();
  } catch (err) {
    // A kubeconfig problem is the user's to fix: print it as usage, not as a crash.
    if (err instanceof KubeconfigError) throw new UsageError(err.message);
    throw err;
  }
  return { client: new KubeClient(access), namespace: flag(args, 'namespace') ?? access.namespace ?? 'default' };
}
