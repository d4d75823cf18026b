import type { Workspace } from '../api/v1alpha1/index.js';

/**
 * The workspace identity bound into every ciphertext. A platform-chosen
 * `spec.encryption.identity` survives rebuilding the Workspace or the whole
 * cluster (so sealed values in Git stay valid); without it the Workspace's
 * UID is used, so a deleted and recreated Workspace inherits nothing.
 */
export function workspaceIdentity(ws: Pick<Workspace, 'metadata' | 'spec'>): string {
  return ws.spec?.encryption?.identity || ws.metadata.uid || '';
}
