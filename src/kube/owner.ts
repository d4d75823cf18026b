import type { KubeObject } from './client.js';

/** A controller owner reference, so garbage collection follows the owner. */
export function ownerReference(owner: KubeObject & { apiVersion?: string; kind?: string }) {
  return {
    apiVersion: owner.apiVersion!,
    kind: owner.kind!,
    name: owner.metadata!.name!,
    uid: owner.metadata!.uid!,
    controller: true,
    blockOwnerDeletion: true,
  };
}

export function hasFinalizer(obj: KubeObject, finalizer: string): boolean {
  return (obj.metadata?.finalizers ?? []).includes(finalizer);
}
