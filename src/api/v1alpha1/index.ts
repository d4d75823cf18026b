/**
 * atoll's API, group `atoll.dev`, version `v1alpha1`: the types generated from
 * the CRDs in crds/, the names a client needs to address each kind, condition
 * constants and the schema validators. Import from here, not from the files.
 */
export const GROUP = 'atoll.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}` as const;

/** How a kind is addressed: REST plural, list kind, scope. */
export interface KindInfo {
  readonly kind: string;
  readonly listKind: string;
  readonly plural: string;
  readonly singular: string;
  readonly namespaced: boolean;
}

export const WORKSPACE = Object.freeze({
  kind: 'Workspace',
  listKind: 'WorkspaceList',
  plural: 'workspaces',
  singular: 'workspace',
  namespaced: true,
} as const satisfies KindInfo);

export const EXTERNAL_CONNECTION = Object.freeze({
  kind: 'ExternalConnection',
  listKind: 'ExternalConnectionList',
  plural: 'externalconnections',
  singular: 'externalconnection',
  namespaced: true,
} as const satisfies KindInfo);

export const INTEGRATION_TYPE = Object.freeze({
  kind: 'IntegrationType',
  listKind: 'IntegrationTypeList',
  plural: 'integrationtypes',
  singular: 'integrationtype',
  namespaced: false,
} as const satisfies KindInfo);

export type * from './generated.js';
export * from './conditions.js';
export * from './well-known.js';
export * from './schemas.js';
