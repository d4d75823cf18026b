import type { Workspace } from '../api/v1alpha1/index.js';
import type { KubeObject } from '../kube/client.js';

/** Anything that lists a namespace's Workspaces (the operator's informer, the gateway's cache). */
export interface WorkspaceLister {
  list(namespace: string): Array<Workspace & KubeObject>;
}

/**
 * The Workspace governing a namespace: the oldest one not being deleted. The
 * controllers and the gateway apply this one rule, so they never disagree on
 * whose policy and identity a connection falls under.
 */
export function governingWorkspace<T extends KubeObject>(workspaces: readonly T[]): T | undefined {
  return oldestFirst(workspaces.filter((w) => !w.metadata?.deletionTimestamp))[0];
}

/** The Workspace governing `namespace` among those `ctx.workspaces` lists. */
export function workspaceOf(
  ctx: { workspaces: WorkspaceLister },
  namespace: string,
): (Workspace & KubeObject) | undefined {
  return governingWorkspace(ctx.workspaces.list(namespace));
}

/** Oldest first, name as tie-breaker: the first Workspace in a namespace wins. */
export function oldestFirst<T extends KubeObject>(items: readonly T[]): T[] {
  return [...items].sort((a, b) => {
    const ta = a.metadata?.creationTimestamp ?? '';
    const tb = b.metadata?.creationTimestamp ?? '';
    return ta === tb ? String(a.metadata?.name).localeCompare(String(b.metadata?.name)) : ta.localeCompare(tb);
  });
}
