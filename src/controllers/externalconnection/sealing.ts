import {
  CONNECTION_LABEL,
  ConditionType,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  OFFER_PINS_ANNOTATION,
  REBIND_REQUESTED_ANNOTATION,
  REBIND_REQUESTED_BY_ANNOTATION,
  Reason,
  SEALED_SECRET_TYPE,
  WORKSPACE_LABEL,
  findCondition,
  managedSecretName,
  type ExternalConnection,
  type ExternalConnectionStatus,
  type IntegrationType,
  type Workspace,
} from '../../api/v1alpha1/index.js';
import { CryptoError } from '../../crypto/errors.js';
import type { KubeObject } from '../../kube/client.js';
import { isAlreadyExists } from '../../kube/errors.js';
import { ownerReference } from '../../kube/owner.js';
import { ExternalConnections, Secrets } from '../../kube/resources.js';
import { destinationDigest, legacyDestinationDigest, settingsDigest } from '../../integrations/destination.js';
import type { Logger } from '../../runtime/logger.js';
import { workspaceIdentity } from '../../domain/workspace-identity.js';
import type { OperatorContext, Secret } from '../context.js';
import { readState, saysState, STATE_ANNOTATION, writeState, type FieldState } from '../../domain/credentials-state.js';
import { CredentialProblem, resolveField, type FieldContext, type ResolvedField } from './credentials.js';
import type { ConnectionStatus } from './status.js';
import { VerifiedCopies } from './verified-copies.js';

type Conn = ExternalConnection & KubeObject;

/** What sealing produced for a connection whose every credential is stored. */
export interface Sealed {
  resolved: ResolvedField[];
  /** status.credentials */
  credentials: NonNullable<ExternalConnectionStatus['credentials']>;
  credentialHint: string;
  secretName: string;
  /** The CredentialsSealed=True message. */
  message: string;
}

/** Runs after the KMS calls and before the managed Secret write: lets tests crash the controller there. */
export type BeforeSecretWrite = (namespace: string, name: string) => Promise<void>;

/**
 * Verifies every credential of a connection under its binding and keeps the
 * managed Secret (ciphertext only) in step: rotations, re-wraps after a key
 * change, repairs of altered copies, rebinds. A problem the user must fix is
 * reported in status (CredentialsSealed=False) and `seal` returns undefined.
 */
export class CredentialSealer {
  /** The last credential Warning recorded per connection (uid/generation/reason). */
  readonly #warned = new Map<string, string>();
  readonly #verified = new VerifiedCopies();
  /** Managed Secret names (namespace/name) a create found taken: read before writing from then on. */
  readonly #taken = new Set<string>();

  constructor(
    private readonly ctx: OperatorContext,
    private readonly status: ConnectionStatus,
    private readonly beforeSecretWrite?: BeforeSecretWrite,
  ) {}

  forget(key: string, namespace: string, name: string): void {
    this.#warned.delete(key);
    this.#verified.forgetConnection(namespace, name);
    this.#taken.delete(`${namespace}/${managedSecretName(name)}`);
  }

  async seal(
    key: string,
    conn: Conn,
    ws: Workspace & KubeObject,
    type: IntegrationType & KubeObject,
    now: Date,
    log: Logger,
  ): Promise<Sealed | undefined> {
    const ns = conn.metadata.namespace!;
    const keyRef = this.ctx.crypto.keyFor(ws.spec?.encryption?.keyId);
    const secretName = managedSecretName(conn.metadata.name!);
    const presumedAbsent = this.mayPresumeAbsent(conn, ns, secretName);
    const existing = presumedAbsent ? undefined : await this.readSecret(ns, secretName);
    if (existing && existing.metadata?.labels?.[MANAGED_BY_LABEL] !== MANAGED_BY_VALUE) {
      // Someone else's Secret has the name we need: never overwrite it.
      await this.status.failSealed(
        conn,
        Reason.PolicyViolation,
        `Secret ${secretName} already exists and is not managed by atoll; rename that Secret or this connection`,
        now,
      );
      return undefined;
    }
    // A managed Secret left by a deleted namesake (orphaned) carries nothing over: its state is ignored and it is rewritten.
    const ours = existing?.metadata?.ownerReferences?.some((o) => o.uid === conn.metadata.uid) ?? false;
    const previous = ours ? readState(existing) : {};
    const fields = this.fieldContext(conn, ws, type, keyRef, now);

    const resolved: ResolvedField[] = [];
    const problems: Array<{ field: string; problem: CredentialProblem }> = [];
    try {
      for (const [field, source] of Object.entries(conn.spec.credentials ?? {})) {
        const ct =
          ours && existing?.data?.[field] ? Buffer.from(existing.data[field], 'base64').toString('utf8') : undefined;
        try {
          resolved.push(
            await resolveField(fields, field, source, {
              state: fieldState(previous, field),
              ciphertext: ct,
              statusVersion: conn.status?.credentials?.[field]?.version,
            }),
          );
        } catch (err) {
          if (!(err instanceof CredentialProblem)) throw err;
          problems.push({ field, problem: err });
        }
      }
    } catch (err) {
      // Only a KMS that does not answer (or refuses the operator) gets here: problems of a ciphertext are CredentialProblems.
      if (err instanceof CryptoError) {
        this.ctx.metrics.kmsFailures.inc({ provider: keyRef.provider, reason: err.reason });
        await this.status.failSealed(
          conn,
          Reason.KMSUnavailable,
          `the KMS (${keyRef.provider}) could not be reached or refused the request; the stored credentials are unchanged and atoll retries with backoff`,
          now,
        );
      }
      throw err;
    }

    await this.beforeSecretWrite?.(ns, conn.metadata.name!);
    // A field waiting for a rebind keeps its copy (nothing deleted, nothing served: it no longer opens for the
    // current destination); any other problem removes the field, so the gateway and agent stop serving it.
    const kept = problems
      .filter((p) => p.problem.keep && fieldState(previous, p.field) && existing?.data?.[p.field] !== undefined)
      .map((p) => p.field);
    // A new connection with a problem gets no managed Secret yet; an existing one loses what may no longer be served.
    if (ours || (resolved.length > 0 && problems.length === 0)) {
      try {
        await this.writeSecret(
          conn,
          ws,
          secretName,
          ours ? existing : undefined,
          existing,
          resolved,
          kept,
          previous,
          log,
        );
      } catch (err) {
        if (!presumedAbsent || !isAlreadyExists(err)) throw err;
        // The create wrote nothing: something has the name after all (a tenant's Secret, or our own
        // not yet in the cache). Read it and decide as for any existing Secret.
        this.#taken.add(`${ns}/${secretName}`);
        return this.seal(key, conn, ws, type, now, log);
      }
    }
    await this.recordChanges(conn, resolved, previous);
    const credentials = {
      ...Object.fromEntries(kept.map((f) => [f, conn.status?.credentials?.[f] ?? {}])),
      ...Object.fromEntries(
        resolved.map((r) => [
          r.field,
          {
            hint: r.state.hint,
            version: r.state.version,
            updatedAt: r.state.updatedAt,
            keyId: r.state.keyId,
            ...(r.state.sealed ? { sealed: r.state.sealed } : {}),
          },
        ]),
      ),
    };
    if (problems.length > 0) {
      await this.warnOnce(key, conn, problems[0]!.problem);
      await this.status.failSealed(
        conn,
        problems[0]!.problem.reason,
        problems.map((p) => p.problem.message).join('; '),
        now,
        credentials,
      );
      return undefined;
    }
    this.#warned.delete(key);
    const order = (type.spec.credentialFields ?? []).map((f) => f.name);
    const first = [...resolved].sort((a, b) => order.indexOf(a.field) - order.indexOf(b.field))[0];
    return {
      resolved,
      credentials,
      credentialHint: first?.state.hint ?? '',
      secretName,
      message: `${resolved.length} credential(s) sealed with ${keyRef.keyId}`,
    };
  }

  private fieldContext(
    conn: Conn,
    ws: Workspace & KubeObject,
    type: IntegrationType & KubeObject,
    key: FieldContext['key'],
    now: Date,
  ): FieldContext {
    const ns = conn.metadata.namespace!;
    const rebind = conn.metadata.annotations?.[REBIND_REQUESTED_ANNOTATION];
    return {
      crypto: this.ctx.crypto,
      namespace: ns,
      workspace: workspaceIdentity(ws),
      connection: conn.metadata.name!,
      uid: conn.metadata.uid!,
      destination: destinationDigest(type, conn.spec.settings),
      legacyDestination: legacyDestinationDigest(type, conn.spec.settings),
      settings: settingsDigest(conn.spec.settings),
      typeName: conn.spec.type,
      ...(type.metadata?.generation !== undefined ? { typeGeneration: type.metadata.generation } : {}),
      key,
      ...(rebind !== undefined ? { rebind } : {}),
      readSource: (name) => this.readSecret(ns, name),
      writePins: async (name, pins) => {
        await this.ctx.client.mergePatch(Secrets, name, ns, {
          metadata: { annotations: { [OFFER_PINS_ANNOTATION]: JSON.stringify(pins) } },
        });
      },
      now,
      verified: this.#verified,
    };
  }

  /** Events for rotations and confirmed rebinds. */
  private async recordChanges(
    conn: Conn,
    resolved: ResolvedField[],
    previous: Record<string, FieldState>,
  ): Promise<void> {
    for (const r of resolved.filter((x) => x.rotated && fieldState(previous, x.field))) {
      await this.ctx.events.record(
        ExternalConnections,
        conn,
        'Normal',
        'CredentialRotated',
        `credential ${r.field} rotated to version ${r.state.version}`,
      );
    }
    const rebound = resolved.filter((r) => r.rebound).map((r) => r.field);
    if (rebound.length > 0) {
      const by = conn.metadata.annotations?.[REBIND_REQUESTED_BY_ANNOTATION] ?? 'an unknown user';
      await this.ctx.events.record(
        ExternalConnections,
        conn,
        'Normal',
        'CredentialsRebound',
        `credential(s) ${rebound.join(', ')} re-sealed for the current destination of IntegrationType ${conn.spec.type}; confirmed by ${by}`,
      );
    }
  }

  /**
   * One Warning per change of reason: a terminal problem is not retried, so there is no storm to report.
   * The memo covers a reconcile that runs before the watch delivers the status just written (our own Secret write triggers it).
   */
  private async warnOnce(key: string, conn: Conn, problem: CredentialProblem): Promise<void> {
    const said = `${conn.metadata.uid}/${conn.metadata.generation}/${problem.reason}`;
    if (
      findCondition(conn.status?.conditions, ConditionType.CredentialsSealed)?.reason !== problem.reason &&
      this.#warned.get(key) !== said
    ) {
      await this.ctx.events.record(ExternalConnections, conn, 'Warning', problem.reason, problem.message);
    }
    this.#warned.set(key, said);
  }

  /**
   * Whether the managed Secret may be taken as absent without reading it. A miss in the label-selected
   * cache proves nothing (ADR 0022: a tenant Secret with the name is not cached), but the write that
   * follows is a create, which never overwrites: AlreadyExists answers the question a GET would have
   * (ADR 0031), saving one request per new connection. Only for a connection that has never published
   * sealed credentials (new: after a restart, before the caches fill, existing connections are read
   * first, so no KMS call is spent on a copy that would not be written), not for names a create already
   * found taken, and not when a credential comes from a `secretKeyRef`, whose resolution writes pins.
   */
  private mayPresumeAbsent(conn: Conn, ns: string, secretName: string): boolean {
    if (conn.status?.credentials !== undefined) return false;
    if (this.ctx.secrets.synced(ns, secretName) || this.#taken.has(`${ns}/${secretName}`)) return false;
    return Object.values(conn.spec.credentials ?? {}).every((source) => source.secretKeyRef === undefined);
  }

  /** A Secret of a workspace namespace: from its watch cache once synced, else from the API server. */
  private async readSecret(ns: string, name: string): Promise<Secret | undefined> {
    if (this.ctx.secrets.synced(ns, name)) return this.ctx.secrets.get(ns, name);
    return this.ctx.client.tryGet<Secret>(Secrets, name, ns);
  }

  /** `owned` is the existing Secret when it belongs to this connection object; `existing` is whatever has the name. */
  private async writeSecret(
    conn: Conn,
    ws: Workspace & KubeObject,
    name: string,
    owned: Secret | undefined,
    existing: Secret | undefined,
    resolved: ResolvedField[],
    kept: string[],
    previous: Record<string, FieldState>,
    log: Logger,
  ): Promise<void> {
    const ns = conn.metadata.namespace!;
    const data: Record<string, string> = Object.fromEntries(kept.map((f) => [f, owned!.data![f]!]));
    for (const r of resolved) data[r.field] = Buffer.from(r.ciphertext).toString('base64');
    // Removed fields keep their state (not their data): versions never restart, so an old copy never fits again.
    const state: Record<string, FieldState> = { ...previous };
    for (const r of resolved) state[r.field] = r.state;
    if (owned && sameData(owned.data, data) && saysState(owned.metadata?.annotations?.[STATE_ANNOTATION], state))
      return;
    const body: Secret = {
      metadata: {
        name,
        namespace: ns,
        labels: {
          [MANAGED_BY_LABEL]: MANAGED_BY_VALUE,
          [CONNECTION_LABEL]: conn.metadata.name!,
          [WORKSPACE_LABEL]: ws.metadata.name!,
        },
        annotations: { [STATE_ANNOTATION]: writeState(state) },
        ownerReferences: [ownerReference(conn)],
        ...(existing ? { resourceVersion: existing.metadata?.resourceVersion } : {}),
      },
      type: SEALED_SECRET_TYPE,
      data,
    };
    if (existing) await this.ctx.client.replace(Secrets, body);
    else await this.ctx.client.create(Secrets, body);
    log.info({ fields: resolved.length, secret: body.metadata!.name }, 'managed secret written');
  }
}

function sameData(a: Record<string, string> | undefined, b: Record<string, string>): boolean {
  const ka = Object.keys(a ?? {}).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a![k] === b[k]);
}

/** A field's entry in the Secret's state: own entries only, so a field named like an Object.prototype member has none unless written. */
function fieldState(state: Record<string, FieldState>, field: string): FieldState | undefined {
  return Object.hasOwn(state, field) ? state[field] : undefined;
}
