import type { Condition, ConnectionUsage, ExternalConnection, IntegrationType } from '../api/v1alpha1/index.js';
import { activeUse } from '../domain/usage.js';
import { TEST_REQUESTED_AT_ANNOTATION } from '../api/v1alpha1/index.js';
import { ExternalConnections, IntegrationTypes, Workspaces } from '../kube/resources.js';
import type { KubeObject } from '../kube/client.js';
import { stringify } from 'yaml';
import { validateSettings } from '../integrations/settings.js';
import { flag, flags, keyValues, UsageError, type ParsedArgs } from './args.js';
import { forGit } from './seal.js';
import { cliClient } from './kube-context.js';
import { promptLine, readSecret } from './prompt.js';
import { parseDuration } from '../domain/duration.js';
import { coerceSetting } from './settings-input.js';

type Conn = ExternalConnection & KubeObject;

/** `atoll test <connection>`: asks for a probe now, waits for it, prints the outcome. */
export async function testConnection(args: ParsedArgs): Promise<number> {
  const name = args.positional[0];
  if (!name) throw new UsageError('atoll test <connection> [-n namespace] [--timeout 60s]');
  const { client, namespace } = cliClient(args);
  const requestedAt = new Date().toISOString();
  const before = await client.get<Conn>(ExternalConnections, name, namespace);
  const previousProbe = before.status?.lastProbe?.time;
  await client.mergePatch(ExternalConnections, name, namespace, {
    metadata: { annotations: { [TEST_REQUESTED_AT_ANNOTATION]: requestedAt } },
  });
  const timeoutMs = parseDuration(flag(args, 'timeout'), 60_000);
  if (!(timeoutMs > 0)) throw new UsageError('--timeout must be a duration such as 30s or 2m');
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const conn = await client.get<Conn>(ExternalConnections, name, namespace);
    const probe = conn.status?.lastProbe;
    if (probe?.time && probe.time !== previousProbe && Date.parse(probe.time) >= Date.parse(requestedAt) - 1000) {
      const ready = find(conn.status?.conditions, 'Ready');
      process.stdout.write(
        `${namespace}/${name}: ${probe.result} (${probe.durationMs} ms)\n  ${probe.message ?? ''}\n`,
      );
      for (const t of ['Reachable', 'Authenticated']) {
        const c = find(conn.status?.conditions, t);
        process.stdout.write(`  ${t}=${c?.status ?? 'Unknown'} ${c?.reason ?? ''}\n`);
      }
      return ready?.status === 'True' ? 0 : 1;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  process.stderr.write(
    `no probe result for ${namespace}/${name} within the timeout; is the atoll controller running?\n`,
  );
  return 2;
}

/** `atoll rotate <connection> --field f`: a new value, sealed at admission; version + 1. */
export async function rotate(args: ParsedArgs): Promise<number> {
  const name = args.positional[0];
  const fieldNames = flags(args, 'field');
  if (!name || fieldNames.length === 0)
    throw new UsageError(
      'atoll rotate <connection> --field <name> [--field ...] [-n namespace]; see atoll rotate --help',
    );
  if (!process.stdin.isTTY && fieldNames.length > 1)
    throw new UsageError(
      'stdin can carry one credential: pass a single --field, or run in a terminal to be prompted for each',
    );
  const { client, namespace } = cliClient(args);
  const current = await client.get<Conn>(ExternalConnections, name, namespace);
  const credentials: Record<string, unknown> = {};
  for (const f of fieldNames) {
    const value = await readSecret(`new ${f}: `);
    if (value.trim() === '') throw new UsageError(`new ${f}: empty; nothing was changed`);
    credentials[f] = { value, sealed: null, secretKeyRef: null };
  }
  const updated = await client.mergePatch<Conn>(ExternalConnections, name, namespace, { spec: { credentials } });
  process.stdout.write(
    `${namespace}/${name}: ${fieldNames.join(', ')} replaced (sealed: ${fieldNames.every((f) => updated.spec.credentials?.[f]?.sealed) ? 'yes' : 'no'})\n`,
  );
  const manager = gitOpsManager(current);
  if (manager) {
    // The next sync would re-apply the old sealed value from Git: hand over the new one to commit.
    process.stderr.write(
      `warning: ${namespace}/${name} is managed by ${manager}; commit the sealed manifest below to Git, or the next sync restores the old credential\n`,
    );
    process.stdout.write(`---\n${stringify(forGit(updated))}`);
  }
  return 0;
}

/** Who else writes this object from Git, if anyone: Argo CD and Flux markers, or another field manager of spec.credentials. */
export function gitOpsManager(conn: Conn): string | undefined {
  const labels = conn.metadata.labels ?? {};
  const annotations = conn.metadata.annotations ?? {};
  if (annotations['argocd.argoproj.io/tracking-id'])
    return `Argo CD (application ${annotations['argocd.argoproj.io/tracking-id'].split(':')[0]})`;
  if (labels['kustomize.toolkit.fluxcd.io/name'])
    return `Flux (Kustomization ${labels['kustomize.toolkit.fluxcd.io/name']})`;
  if (labels['helm.toolkit.fluxcd.io/name']) return `Flux (HelmRelease ${labels['helm.toolkit.fluxcd.io/name']})`;
  if (labels['app.kubernetes.io/instance']) return `Argo CD (application ${labels['app.kubernetes.io/instance']})`;
  const managers = ((conn.metadata.managedFields ?? []) as Array<{ manager?: string; fieldsV1?: unknown }>)
    .filter((m) => JSON.stringify(m.fieldsV1 ?? {}).includes('"f:credentials"'))
    .map((m) => m.manager ?? '')
    .filter((m) => m && !INTERACTIVE_MANAGERS.test(m));
  return managers.length ? `field manager ${managers[0]}` : undefined;
}

/** Field managers of people at a terminal (kubectl, atoll itself); anything else is a controller, e.g. a GitOps tool. */
const INTERACTIVE_MANAGERS = /^(kubectl(-.*)?|atoll(-.*)?)$/;

/** `atoll connect <connection> --type t`: interactive create, one no-echo prompt per credential field. */
export async function connect(args: ParsedArgs): Promise<number> {
  const name = args.positional[0];
  const typeName = flag(args, 'type');
  if (!name || !typeName)
    throw new UsageError(
      'atoll connect <connection> --type <type> [-n namespace] [--set key=value ...]; see atoll connect --help',
    );
  const pairs = keyValues(args, 'set');
  const { client, namespace } = cliClient(args);
  const type = await client.tryGet<IntegrationType & KubeObject>(IntegrationTypes, typeName);
  if (!type)
    throw new UsageError(`--type ${typeName}: no such IntegrationType (kubectl get integrationtypes lists them)`);
  const schema = type.spec.settingsSchema as
    { properties?: Record<string, { description?: string; type?: string }>; required?: string[] } | undefined;
  const settings: Record<string, unknown> = {};
  for (const [key, raw] of pairs) settings[key] = coerceSetting(schema, key, raw);
  // Check what was given before asking for anything: a typo must not cost a round of prompts.
  const early = validateSettings(type, settings);
  const wrong = early.errors.filter((e) => !e.message.endsWith(' is required'));
  if (wrong.length) throw new UsageError(wrong.map((e) => `--set: ${e.message}`).join('\n'));
  const props = schema?.properties ?? {};
  const missing = (schema?.required ?? []).filter((k) => settings[k] === undefined);
  const interactive = process.stdin.isTTY === true;
  if (!interactive && missing.length)
    throw new UsageError(
      `stdin is not a terminal: give the required settings with --set (missing: ${missing.join(', ')})`,
    );
  for (const key of missing)
    settings[key] = coerceSetting(
      schema,
      key,
      await promptLine(`${key}${props[key]?.description ? ` (${props[key].description})` : ''}: `),
    );
  const complete = validateSettings(type, settings);
  if (!complete.ok) throw new UsageError(complete.errors.map((e) => e.message).join('\n'));
  const fields = type.spec.credentialFields ?? [];
  // A terminal prompt ends at the first newline: multi-line fields are added later with atoll rotate --field f < file.
  const toRead = interactive ? fields.filter((f) => !f.format) : fields.filter((f) => f.required);
  if (!interactive && toRead.length > 1)
    throw new UsageError(
      `stdin can carry one credential but ${typeName} requires ${toRead.map((f) => f.name).join(', ')}: run in a terminal, or use atoll seal --field ... for each`,
    );
  const credentials: Record<string, { value: string }> = {};
  for (const f of toRead) {
    const v = await readSecret(`${f.displayName ?? f.name}${f.required ? '' : ' (optional, empty to skip)'}: `);
    if (v.trim() === '' && f.required) throw new UsageError(`${f.name} is required and was empty; nothing was created`);
    if (v.trim() !== '') credentials[f.name] = { value: v };
  }
  await client.create(ExternalConnections, {
    metadata: { name, namespace },
    spec: { type: typeName, settings, credentials },
  } as never);
  process.stdout.write(`created ${namespace}/${name}; run: atoll test ${name} -n ${namespace}\n`);
  return 0;
}

/** `atoll status`: the workspace's connections, one line each with who uses them (status.usage), then each connection's conditions. */
export async function status(args: ParsedArgs): Promise<number> {
  const { client, namespace } = cliClient(args);
  const workspaces = await client.list<KubeObject>(Workspaces, { namespace });
  if (workspaces.items.length === 0) {
    process.stderr.write(
      `namespace ${namespace} has no Workspace: create one (see config/samples/01-workspace.yaml) or pick another with -n <namespace>\n`,
    );
    return 1;
  }
  const list = await client.list<Conn>(ExternalConnections, { namespace });
  const rows = [
    ['NAME', 'TYPE', 'READY', 'REASON', 'CREDENTIAL', 'LAST PROBE', 'LAST USED', 'CONSUMERS (24H REQUESTS)'],
  ];
  for (const c of list.items) {
    const ready = find(c.status?.conditions, 'Ready');
    rows.push([
      c.metadata.name!,
      c.spec.type,
      ready?.status ?? 'Unknown',
      ready?.reason ?? '',
      c.status?.credentialHint ?? '',
      c.status?.lastProbe?.time ?? '',
      c.status?.usage?.lastUsedAt ?? '',
      describeConsumers(c.status?.usage, Date.now()),
    ]);
  }
  process.stdout.write(table(rows));
  if (list.items.length === 0)
    process.stdout.write(`(no connections in ${namespace}; create one with atoll connect or atoll seal)\n`);
  for (const c of list.items) {
    process.stdout.write(`\nConditions of ${c.metadata.name}:\n`);
    const conditions = c.status?.conditions ?? [];
    if (conditions.length === 0)
      process.stdout.write('  (none yet: the controller has not reconciled it; is it running?)\n');
    else
      process.stdout.write(
        table(
          [
            ['TYPE', 'STATUS', 'REASON', 'MESSAGE'],
            ...conditions.map((x) => [x.type, x.status, x.reason ?? '', (x.message ?? '').replace(/\s+/g, ' ')]),
          ],
          '  ',
        ),
      );
  }
  return 0;
}

function table(rows: string[][], indent = ''): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map(
      (r) =>
        indent +
        r
          .map((v, i) => v.padEnd(widths[i]!))
          .join('  ')
          .trimEnd() +
        '\n',
    )
    .join('');
}

const SHOWN_CONSUMERS = 3;

/** "billing-worker/proxy(120), db-agent/files(2, streaming) +4 more"; the full list is in status.usage. */
export function describeConsumers(usage: ConnectionUsage | undefined, nowMs: number): string {
  const streaming = new Set(activeUse(usage, nowMs, 0).streaming);
  const all = usage?.consumers ?? [];
  const shown = all
    .slice(0, SHOWN_CONSUMERS)
    .map(
      (c) =>
        `${c.serviceAccount}/${c.via}(${c.requests24h ?? 0}${c.via === 'files' && streaming.has(c.serviceAccount) ? ', streaming' : ''})`,
    );
  return [...shown, ...(all.length > SHOWN_CONSUMERS ? [`+${all.length - SHOWN_CONSUMERS} more`] : [])].join(', ');
}

function find(conditions: Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}
