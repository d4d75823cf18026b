import { KubeConfig } from '@kubernetes/client-node';
import { KubeClient } from '../kube/client.js';
import { flag, type ParsedArgs } from './args.js';

/** Client for CLI commands: --kubeconfig, then KUBECONFIG / ~/.kube/config / in-cluster. */
export function cliClient(args: ParsedArgs): { client: KubeClient; namespace: string } {
  const kc = new KubeConfig();
  const file = flag(args, 'kubeconfig');
  if (file) kc.loadFromFile(file);
  else kc.loadFromDefault();
  const ctxNs = kc.getContextObject(kc.getCurrentContext())?.namespace;
  return { client: new KubeClient(kc), namespace: flag(args, 'namespace', 'n') ?? ctxNs ?? 'default' };
}
