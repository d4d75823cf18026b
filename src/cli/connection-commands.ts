import type { Condition, ConnectionUsage, ExternalConnection, IntegrationType } from '../api/v1alpha1/index.js';
import { activeUse } from '../domain/usage.js';
import { TEST_REQUESTED_AT_ANNOTATION } from '../api/v1alpha1/index.js';
import { ExternalConnections, IntegrationTypes } from '../kube/resources.js';
import type { KubeObject } from '../kube/client.js';
import { flag, flags, UsageError, type ParsedArgs } from './args.js';
import { cliClient } from './kube-context.js';
import { promptLine, readSecret } from './prompt.js';
import { parseDuration } from '../controllers/externalconnection/duration.js';
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
  await client.mergePatch(ExternalConnections, name, namespace, { metadata: { annotations: { [TEST_REQUESTED_AT_ANNOTATION]: requestedAt } } });
  const timeoutMs = parseDuration(flag(args, 'timeout'), 60_000);
  if (!(timeoutMs > 0)) throw new UsageError('--timeout must be a duration such as 30s or 2m');
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const conn = await client.get<Conn>(ExternalConnections, name, namespace);
    const probe = conn.status?.lastProbe;
    if (probe?.time && probe.time !== previousProbe && Date.parse(probe.time) >= Date.parse(requestedAt) - 1000) {
      const ready = find(conn.status?.conditions, 'Ready');
      process.stdout.write(`${namespace}/${name}: ${probe.result} (${probe.durationMs} ms)\n  ${probe.message ?? ''}\n`);
      for (const t of ['Reachable', 'Authenticated']) {
        const c = find(conn.status?.conditions, t);
        process.stdout.write(`  ${t}=${c?.status ?? 'Unknown'} ${c?.reason ?? ''}\n`);
      }
      return ready?.status === 'True' ? 0 : 1;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  process.stderr.write(`no probe result for ${namespace}/${name} within the timeout; is the atoll controller running?\n`);
  return 2;
}

/** `atoll rotate <connection> --field f`: a new value, sealed at admission; version + 1. */
export async function rotate(args: ParsedArgs): Promise<number> {
  const name = args.positional[0];
  const fieldNames = flags(args, 'field');
  if (!name || fieldNames.length === 0) throw new UsageError('atoll rotate <connection> --field <name> [--field ...] [-n namespace]');
  const { client, namespace } = cliClient(args);
  const credentials: Record<string, unknown> = {};
  for (const f of fieldNames) credentials[f] = { value: await readSecret(`new ${f}: `), sealed: null, secretKeyRef: null };
  const updated = await client.mergePatch<Conn>(ExternalConnections, name, namespace, { spec: { credentials } });
  process.stdout.write(`${namespace}/${name}: ${fieldNames.join(', ')} replaced (sealed: ${fieldNames.every((f) => updated.spec.credentials?.[f]?.sealed) ? 'yes' : 'no'})\n`);
  return 0;
}

/** `atoll connect <connection> --type t`: interactive create, one no-echo prompt per credential field. */
export async function connect(args: ParsedArgs): Promise<number> {
  const name = args.positional[0];
  const typeName = flag(args, 'type');
  if (!name || !typeName) throw new UsageError('atoll connect <connection> --type <type> [-n namespace] [--set key=value ...]');
  const { client, namespace } = cliClient(args);
  const type = await client.get<IntegrationType & KubeObject>(IntegrationTypes, typeName);
  const schema = type.spec.settingsSchema as { properties?: Record<string, { description?: string; type?: string }>; required?: string[] } | undefined;
  const settings: Record<string, unknown> = {};
  for (const kv of flags(args, 'set')) settings[kv.split('=')[0]!] = coerceSetting(schema, kv.split('=')[0]!, kv.slice(kv.indexOf('=') + 1));
  const props = schema?.properties ?? {};
  for (const key of schema?.required ?? []) {
    if (settings[key] === undefined) settings[key] = coerceSetting(schema, key, await promptLine(`${key}${props[key]?.description ? ` (${props[key]!.description})` : ''}: `));
  }
  const credentials: Record<string, { value: string }> = {};
  for (const f of type.spec.credentialFields ?? []) {
    const v = await readSecret(`${f.displayName ?? f.name}${f.required ? '' : ' (optional, empty to skip)'}: `);
    if (v) credentials[f.name] = { value: v };
  }
  await client.create(ExternalConnections, { metadata: { name, namespace }, spec: { type: typeName, settings, credentials } } as never);
  process.stdout.write(`created ${namespace}/${name}; run: atoll test ${name} -n ${namespace}\n`);
  return 0;
}

/** `atoll status`: the workspace's connections, one line each, with who uses them (status.usage). */
export async function status(args: ParsedArgs): Promise<number> {
  const { client, namespace } = cliClient(args);
  const list = await client.list<Conn>(ExternalConnections, { namespace });
  const rows = [['NAME', 'TYPE', 'READY', 'REASON', 'CREDENTIAL', 'LAST PROBE', 'LAST USED', 'CONSUMERS (24H REQUESTS)']];
  for (const c of list.items) {
    const ready = find(c.status?.conditions, 'Ready');
    rows.push([c.metadata.name!, c.spec.type, ready?.status ?? 'Unknown', ready?.reason ?? '', c.status?.credentialHint ?? '', c.status?.lastProbe?.time ?? '', c.status?.usage?.lastUsedAt ?? '', describeConsumers(c.status?.usage, Date.now())]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) process.stdout.write(r.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd() + '\n');
  return 0;
}

const SHOWN_CONSUMERS = 3;

/** "billing-worker/proxy(120), db-agent/files(2, streaming) +4 more"; the full list is in status.usage. */
export function describeConsumers(usage: ConnectionUsage | undefined, nowMs: number): string {
  const streaming = new Set(activeUse(usage, nowMs, 0).streaming);
  const all = usage?.consumers ?? [];
  const shown = all.slice(0, SHOWN_CONSUMERS).map((c) => `${c.serviceAccount}/${c.via}(${c.requests24h ?? 0}${c.via === 'files' && streaming.has(c.serviceAccount) ? ', streaming' : ''})`);
  return [...shown, ...(all.length > SHOWN_CONSUMERS ? [`+${all.length - SHOWN_CONSUMERS} more`] : [])].join(', ');
}

function find(conditions: Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}
