import type { EgressPolicy } from '../integrations/probe-types.js';
import { validateSettings } from '../integrations/settings.js';
import type { ConnectionObject, CredentialSnapshot, TypeObject, WorkspaceObject } from './connection-directory.js';
import { GatewayErrorMessage, notReady } from './errors.js';
import type { PoolOwner } from './upstream-client.js';
import { planConnection, type ConnectionTarget } from './upstream-plan.js';

/** Everything a proxied request of one connection needs besides its own path, query, headers and body. */
export interface ConnectionPlan {
  target: ConnectionTarget;
  egress: EgressPolicy;
  owner: PoolOwner;
}

interface Entry {
  type: TypeObject;
  workspace: WorkspaceObject;
  snapshot: CredentialSnapshot;
  plan: ConnectionPlan;
}

/**
 * Per-connection forwarding plans: the settings validated, the base URL,
 * credential placement and headers rendered, the egress policy and pool owner
 * picked, once per version of what they derive from instead of on every
 * request. An entry is keyed by the connection object and checked against the
 * type, workspace and credential snapshot objects it was built from: informers
 * replace an object on every change and the directory replaces a snapshot
 * whenever the managed Secret or the connection's status versions change, so
 * identity comparison is exact and a stale plan is never used. Entries of a
 * connection object that is gone are collected with it (WeakMap): no plaintext
 * outlives the objects it came from.
 */
export class ConnectionPlans {
  readonly #entries = new WeakMap<ConnectionObject, Entry>();

  /**
   * The plan for `conn` forwarding through `type` (which must have a gateway
   * section) under `workspace` with `snapshot`'s credentials. Throws the same
   * 503 GatewayErrors as planning each request would (invalid settings, a
   * missing credential); failures are not remembered.
   */
  plan(
    namespace: string,
    conn: ConnectionObject,
    type: TypeObject,
    workspace: WorkspaceObject,
    snapshot: CredentialSnapshot,
  ): ConnectionPlan {
    const cached = this.#entries.get(conn);
    if (cached !== undefined && cached.type === type && cached.workspace === workspace && cached.snapshot === snapshot)
      return cached.plan;
    const settings = validateSettings({ metadata: type.metadata, spec: type.spec }, conn.spec?.settings);
    if (!settings.ok) throw notReady(GatewayErrorMessage.invalidSettings);
    const target = planConnection(type.spec.gateway!, { settings: settings.settings, credentials: snapshot.values });
    // Frozen: requests share them, and the egress guard and the pools remember what they derived from them (ADR 0030).
    const plan: ConnectionPlan = {
      target,
      egress: Object.freeze({
        allowCIDRs: Object.freeze([...(workspace.spec?.policy?.egress?.allowCIDRs ?? [])]) as string[],
      }),
      owner: Object.freeze({
        namespace,
        name: String(conn.metadata?.name),
        uid: String(conn.metadata?.uid),
        credentialVersion: JSON.stringify(snapshot.versions),
      }),
    };
    this.#entries.set(conn, { type, workspace, snapshot, plan });
    return plan;
  }
}
