import type { ExternalConnection, IntegrationType, Workspace } from '../api/v1alpha1/index.js';
import { destinationDigest } from '../integrations/destination.js';
import { CONNECTION_LABEL, managedSecretName, SEALED_SECRET_TYPE } from '../api/v1alpha1/index.js';
import { workspaceIdentity } from '../domain/workspace-identity.js';
import { CiphertextRejectedError, managedCopy, type Envelope } from '../crypto/index.js';
import type { KubeClient, KubeObject } from '../kube/client.js';
import { ExternalConnections, IntegrationTypes, Workspaces } from '../kube/resources.js';
import { Informer, stripForCache } from '../runtime/informer.js';
import { SecretWatch } from '../runtime/secret-watch.js';
import type { Logger } from '../runtime/logger.js';
import { GatewayErrorMessage, notReady } from './errors.js';
import { describeError } from '../runtime/describe-error.js';
import { governingWorkspace } from '../domain/governing-workspace.js';
import { secretAccessGranted } from '../domain/secret-access.js';
import { connectionView, managedSecretView, type ConnectionObject, type ManagedSecretObject } from './cache-views.js';

export type { ConnectionObject } from './cache-views.js';

/** Annotation of a managed Secret with per-field metadata (version, hint, key id); never a value. */

/** The decrypted credentials of one connection at one revision of its managed Secret. */
export interface CredentialSnapshot {
  /** resourceVersion of the managed Secret the values were opened from. */
  revision: string;
  /** Plaintext by field. In memory only; never logged, never serialised except to an authorised agent. */
  values: Record<string, string>;
  /** Rotation counter by field, from the Secret's annotation (when present). */
  versions: Record<string, number>;
}

export type WorkspaceObject = KubeObject & Pick<Workspace, 'spec' | 'status'>;
export type TypeObject = KubeObject & Pick<IntegrationType, 'spec'>;

interface CacheEntry {
  revision: string;
  identity: string;
  destination: string;
  /** The connection's status versions the snapshot was checked against. */
  floors: string;
  snapshot: Promise<CredentialSnapshot>;
}

export type CredentialsListener = () => void;

const SECRET_SYNC_WAIT_MS = 5_000;

/**
 * What the gateway knows about the cluster, kept current by watches:
 * Workspaces, ExternalConnections and IntegrationTypes cluster-wide, and the
 * managed Secrets of each workspace namespace through one label-selected
 * informer per namespace (started when its Workspace appears, stopped when it
 * goes), because the gateway has no cluster-wide Secret access.
 *
 * Decrypted credentials are cached per (namespace, connection, Secret
 * resourceVersion, workspace identity) and dropped the moment the watch
 * delivers a change, so the first request after a rotation opens the new
 * ciphertext and the old plaintext is never used again.
 */
export class ConnectionDirectory {
  readonly #envelope: Envelope;
  readonly #log: Logger;
  readonly #workspaces: Informer<WorkspaceObject>;
  readonly #connections: Informer<ConnectionObject>;
  readonly #types: Informer<TypeObject>;
  readonly #secrets: SecretWatch<ManagedSecretObject>;
  readonly #cache = new Map<string, CacheEntry>();
  readonly #listeners = new Map<string, Set<CredentialsListener>>();
  readonly #derivedOf = new WeakMap<ConnectionObject, { type: TypeObject; destination: string; floors: string }>();
  #stopped = false;

  constructor(opts: { client: KubeClient; envelope: Envelope; log: Logger; relistMs?: number }) {
    this.#envelope = opts.envelope;
    this.#log = opts.log;
    const common = {
      log: opts.log,
      transform: stripForCache,
      ...(opts.relistMs === undefined ? {} : { relistMs: opts.relistMs }),
    };
    this.#workspaces = new Informer<WorkspaceObject>(opts.client, Workspaces, common);
    this.#connections = new Informer<ConnectionObject>(opts.client, ExternalConnections, {
      ...common,
      transform: (conn) => connectionView(stripForCache(conn as unknown as ExternalConnection & KubeObject)),
    });
    this.#types = new Informer<TypeObject>(opts.client, IntegrationTypes, common);
    this.#workspaces.on((event, ws, old) => this.#onWorkspace(event, ws, old));
    this.#secrets = new SecretWatch(opts.client, opts.log, {
      view: managedSecretView,
      ...(opts.relistMs === undefined ? {} : { relistMs: opts.relistMs }),
    });
    this.#secrets.on((_event, secret, old) => this.#onSecret(secret, old));
  }

  async start(timeoutMs = 60_000): Promise<void> {
    for (const informer of [this.#workspaces, this.#connections, this.#types]) informer.start();
    await Promise.all([this.#workspaces, this.#connections, this.#types].map((i) => i.waitForSync(timeoutMs)));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#cache.clear();
    await Promise.all([this.#workspaces, this.#connections, this.#types, this.#secrets].map((i) => i.stop()));
  }

  /** Synced and recently in contact with the API server (feeds /readyz). */
  healthy(): boolean {
    return [this.#workspaces, this.#connections, this.#types].every((i) => i.healthy());
  }

  /** The namespace's governing Workspace (the oldest live one), or undefined. */
  workspace(namespace: string): WorkspaceObject | undefined {
    return governingWorkspace(this.#workspaces.list(namespace));
  }

  connection(namespace: string, name: string): ConnectionObject | undefined {
    return this.#connections.get(`${namespace}/${name}`);
  }

  connections(namespace: string): ConnectionObject[] {
    return this.#connections
      .list(namespace)
      .sort((a, b) => String(a.metadata?.name).localeCompare(String(b.metadata?.name)));
  }

  integrationType(name: string): TypeObject | undefined {
    return this.#types.get(name);
  }

  /**
   * The current plaintext credentials of a connection, opened with the
   * binding {namespace, workspace identity, connection, field, destination of
   * the connection's current settings}. Throws a 503
   * GatewayError when the namespace is not a workspace or the credentials are
   * missing or do not open here.
   */
  async credentials(namespace: string, connection: string): Promise<CredentialSnapshot> {
    const ws = this.workspace(namespace);
    const identity = ws === undefined ? '' : workspaceIdentity(ws as Workspace);
    if (identity === '') throw notReady(GatewayErrorMessage.noWorkspace);
    const conn = this.connection(namespace, connection);
    const type = conn ? this.integrationType(conn.spec.type) : undefined;
    if (conn === undefined || type === undefined) throw notReady(GatewayErrorMessage.noCredentials);
    // The reconciler refuses a connection whose type the policy no longer allows; so does the gateway.
    const allowed = (ws as Workspace).spec?.policy?.allowedTypes ?? [];
    if (allowed.length > 0 && !allowed.includes(conn.spec.type)) throw notReady(GatewayErrorMessage.typeNotAllowed);
    const { destination, floors } = this.#derived(conn, type);
    const secret = await this.#managedSecret(namespace, connection);
    const revision = secret?.metadata?.resourceVersion;
    if (secret === undefined || revision === undefined) throw notReady(GatewayErrorMessage.noCredentials);
    // Only the Secret written for this very connection object (not an orphan of a deleted namesake).
    if (!secret.owners.includes(conn.metadata!.uid!)) throw notReady(GatewayErrorMessage.noCredentials);
    const key = cacheKey(namespace, connection);
    const cached = this.#cache.get(key);
    if (
      cached !== undefined &&
      cached.revision === revision &&
      cached.identity === identity &&
      cached.destination === destination &&
      cached.floors === floors
    )
      return cached.snapshot;

    const entry: CacheEntry = {
      revision,
      identity,
      destination,
      floors,
      snapshot: this.#open(namespace, identity, destination, conn, secret, revision),
    };
    this.#cache.set(key, entry);
    entry.snapshot.catch(() => {
      if (this.#cache.get(key) === entry) this.#cache.delete(key);
    });
    return entry.snapshot;
  }

  /**
   * The destination digest and status versions of a connection object under a
   * type object, computed once per pair: informers replace objects on every
   * change, so identity says whether anything they derive from changed
   * (the digest validates the settings and hashes the type's rules: far
   * more than a request should pay each time).
   */
  #derived(conn: ConnectionObject, type: TypeObject): { destination: string; floors: string } {
    const known = this.#derivedOf.get(conn);
    if (known !== undefined && known.type === type) return known;
    const derived = { type, destination: destinationDigest(type, conn.spec.settings), floors: statusVersions(conn) };
    this.#derivedOf.set(conn, derived);
    return derived;
  }

  /** Calls `listener` whenever the connection's managed Secret (or its workspace) changes; returns an unsubscribe. */
  onCredentialsChanged(namespace: string, connection: string, listener: CredentialsListener): () => void {
    const key = cacheKey(namespace, connection);
    const set = this.#listeners.get(key) ?? new Set();
    set.add(listener);
    this.#listeners.set(key, set);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.#listeners.get(key) === set) this.#listeners.delete(key);
    };
  }

  /**
   * Opens the managed copies (binding format 2) for this connection object
   * (uid), the current destination and the version recorded beside each. A
   * version below the one in the connection's status (written only by the
   * operator) is a rolled-back Secret; a value of another copy (a spec value
   * from Git, an older version, another incarnation) does not open. Either
   * way nothing is served (ADR 0013).
   */
  async #open(
    namespace: string,
    identity: string,
    destination: string,
    conn: ConnectionObject,
    secret: ManagedSecretObject,
    revision: string,
  ): Promise<CredentialSnapshot> {
    const connection = conn.metadata!.name!;
    const values: Record<string, string> = {};
    try {
      for (const { field, data: encoded, version, format } of secret.copies) {
        const floor = conn.status?.credentials?.[field]?.version ?? 0;
        if (format !== 2 || version === undefined || !Number.isSafeInteger(version) || version < floor)
          throw new CiphertextRejectedError();
        const sealed = Buffer.from(encoded, 'base64').toString('utf8');
        values[field] = await this.#envelope.open(sealed, {
          namespace,
          workspace: identity,
          connection,
          field,
          destination,
          copy: managedCopy(conn.metadata!.uid!, version),
        });
      }
    } catch (err) {
      this.#log.warn({ namespace, connection, error: describeError(err) }, 'managed credentials could not be opened');
      throw notReady(GatewayErrorMessage.noCredentials, { cause: err });
    }
    return {
      revision,
      values,
      // Every copy opened, so every version is a safe integer.
      versions: Object.fromEntries(secret.copies.map((c) => [c.field, c.version!])),
    };
  }

  async #managedSecret(namespace: string, connection: string): Promise<ManagedSecretObject | undefined> {
    if (!this.#secrets.watching(namespace) && this.#workspaces.list(namespace).length > 0)
      this.#watchSecrets(namespace);
    if (!(await this.#secrets.waitForSync(namespace, SECRET_SYNC_WAIT_MS))) return undefined;
    const secret = this.#secrets.get(namespace, managedSecretName(connection));
    // Only a Secret atoll wrote for exactly this connection counts.
    if (secret?.type !== SEALED_SECRET_TYPE || secret.metadata?.labels?.[CONNECTION_LABEL] !== connection)
      return undefined;
    return secret;
  }

  #onWorkspace(event: 'add' | 'update' | 'delete', ws: WorkspaceObject, old: WorkspaceObject | undefined): void {
    const namespace = ws.metadata?.namespace;
    if (namespace === undefined || this.#stopped) return;
    // The informer updated its store before calling us: this is the namespace's state now.
    const present = this.#workspaces.list(namespace).length > 0;
    // Watched once the gateway's Secret access there exists (or on first need, see #managedSecret).
    if (present && !this.#secrets.watching(namespace) && secretAccessGranted(ws as Workspace))
      this.#watchSecrets(namespace);
    if (!present && this.#secrets.watching(namespace)) this.#unwatchSecrets(namespace);
    const identityChanged =
      old !== undefined && workspaceIdentity(old as Workspace) !== workspaceIdentity(ws as Workspace);
    if (event === 'delete' || identityChanged) this.#notifyNamespace(namespace);
  }

  #watchSecrets(namespace: string): void {
    this.#secrets.watch(namespace);
    this.#log.info({ namespace }, 'watching managed secrets of workspace');
  }

  #onSecret(secret: ManagedSecretObject, old: ManagedSecretObject | undefined): void {
    if (old !== undefined && old.metadata?.resourceVersion === secret.metadata?.resourceVersion) return;
    const namespace = secret.metadata?.namespace;
    const connection = secret.metadata?.labels?.[CONNECTION_LABEL];
    if (namespace === undefined || connection === undefined || secret.metadata?.name !== managedSecretName(connection))
      return;
    this.#cache.delete(cacheKey(namespace, connection));
    this.#notify(cacheKey(namespace, connection));
  }

  #unwatchSecrets(namespace: string): void {
    this.#secrets.unwatch(namespace);
    for (const key of [...this.#cache.keys()]) if (key.startsWith(`${namespace}/`)) this.#cache.delete(key);
    this.#log.info({ namespace }, 'stopped watching managed secrets of workspace');
  }

  #notifyNamespace(namespace: string): void {
    for (const key of [...this.#cache.keys()]) if (key.startsWith(`${namespace}/`)) this.#cache.delete(key);
    for (const key of [...this.#listeners.keys()]) if (key.startsWith(`${namespace}/`)) this.#notify(key);
  }

  #notify(key: string): void {
    for (const listener of [...(this.#listeners.get(key) ?? [])]) {
      try {
        listener();
      } catch (err) {
        this.#log.error({ error: describeError(err) }, 'credentials listener failed');
      }
    }
  }
}

/** The status versions of a connection's fields, as one comparable string. */
function statusVersions(conn: ConnectionObject): string {
  return JSON.stringify(
    Object.entries(conn.status?.credentials ?? {})
      .map(([f, c]) => [f, c.version ?? 0])
      .sort(),
  );
}

function cacheKey(namespace: string, connection: string): string {
  return `${namespace}/${connection}`;
}

/** Per-field rotation counters from the managed Secret's annotation; malformed annotations give none. */
