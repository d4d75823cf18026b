import { stringify } from 'yaml';
import type { ExternalConnection, IntegrationType } from '../api/v1alpha1/index.js';
import { ExternalConnections, IntegrationTypes } from '../kube/resources.js';
import type { KubeObject } from '../kube/client.js';
import { flag, flags, keyValues, UsageError, type ParsedArgs } from './args.js';
import { cliClient } from './kube-context.js';
import { readSecret } from './prompt.js';
import { coerceSetting } from './settings-input.js';

export const SEAL_USAGE =
  'atoll seal <connection> --type <type> [-n namespace] [--field name ...] [--set key=value ...]; see atoll seal --help';

/**
 * `atoll seal`: sealing without KMS access on the user's machine. The
 * connection is applied as a server-side dry run; the admission webhook seals
 * each value under this exact namespace, workspace, connection and field and
 * the API server returns the object, which we print minus server fields.
 */
export async function seal(args: ParsedArgs): Promise<number> {
  const name = args.positional[0];
  const typeName = flag(args, 'type');
  if (!name || !typeName) throw new UsageError(SEAL_USAGE);
  const { client, namespace } = cliClient(args);
  const type = await client.tryGet<IntegrationType & KubeObject>(IntegrationTypes, typeName);
  let fields = flags(args, 'field');
  if (fields.length === 0 && type)
    fields = (type.spec.credentialFields ?? []).filter((f) => f.required).map((f) => f.name);
  if (fields.length === 0) throw new UsageError('name the credential fields to seal with --field');
  if (!process.stdin.isTTY && fields.length > 1)
    throw new UsageError(
      'stdin can carry one credential: pass a single --field, or run in a terminal to be prompted for each',
    );
  const settings: Record<string, unknown> = {};
  for (const [key, raw] of keyValues(args, 'set')) settings[key] = coerceSetting(type?.spec.settingsSchema, key, raw);
  const credentials: Record<string, { value: string }> = {};
  for (const f of fields) {
    const format = type?.spec.credentialFields?.find((x) => x.name === f)?.format;
    // A terminal prompt ends at the first newline: a PEM or JSON value must come from a file.
    if (format && process.stdin.isTTY)
      throw new UsageError(
        `${f} is multi-line (format ${format}): pipe it from a file, e.g. atoll seal ${name} --type ${typeName} --field ${f} < ${f}.${format === 'json' ? 'json' : 'pem'}`,
      );
    const label = type?.spec.credentialFields?.find((x) => x.name === f)?.displayName ?? f;
    const value = await readSecret(`${label} (${f}): `);
    if (value.trim() === '') throw new UsageError(`${f}: the value is empty or only whitespace; nothing was sealed`);
    credentials[f] = { value };
  }
  const obj: ExternalConnection = {
    apiVersion: 'atoll.dev/v1alpha1',
    kind: 'ExternalConnection',
    metadata: { name, namespace },
    spec: {
      type: typeName,
      ...(flag(args, 'display-name') ? { displayName: flag(args, 'display-name') } : {}),
      ...(Object.keys(settings).length ? { settings } : {}),
      credentials,
    },
  };
  const sealed = await client.apply<ExternalConnection & KubeObject>(ExternalConnections, obj, {
    dryRun: true,
    fieldManager: 'atoll-seal',
  });
  process.stdout.write(stringify(forGit(sealed)));
  return 0;
}

/** Keeps what belongs in Git: no status, uid, resourceVersion, managedFields or timestamps. */
export function forGit(obj: ExternalConnection): ExternalConnection {
  const md = obj.metadata ?? {};
  return {
    apiVersion: obj.apiVersion,
    kind: obj.kind,
    metadata: {
      name: md.name,
      namespace: md.namespace,
      ...(md.labels ? { labels: md.labels } : {}),
      ...(annotationsForGit(md.annotations) ?? {}),
    },
    spec: obj.spec,
  };
}

function annotationsForGit(a: Record<string, string> | undefined): { annotations: Record<string, string> } | undefined {
  if (!a) return undefined;
  const kept = Object.fromEntries(
    Object.entries(a).filter(([k]) => k !== 'kubectl.kubernetes.io/last-applied-configuration'),
  );
  return Object.keys(kept).length ? { annotations: kept } : undefined;
}
