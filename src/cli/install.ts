import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { KubeClient, KubeObject } from '../kube/client.js';
import * as R from '../kube/resources.js';
import type { ResourceType } from '../kube/resources.js';
import { waitFor } from '../dev/ports.js';

const BY_KIND: Record<string, ResourceType> = Object.fromEntries(
  Object.values(R)
    .filter((v): v is ResourceType => typeof v === 'object' && v !== null && 'plural' in v)
    .map((t) => [`${R.apiVersionOf(t)}/${t.kind}`, t]),
);

/** Parses every YAML document in the given files or directories (*.yaml, not kustomization). */
export function readManifests(paths: string[]): KubeObject[] {
  const out: KubeObject[] = [];
  for (const p of paths) {
    if (!existsSync(p)) continue;
    const files = statSync(p).isDirectory()
      ? readdirSync(p)
          .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
          .sort()
          .map((f) => path.join(p, f))
      : [p];
    for (const f of files) {
      for (const doc of parseAllDocuments(readFileSync(f, 'utf8'))) {
        const obj = doc.toJS() as KubeObject | null;
        if (obj?.kind) out.push(obj);
      }
    }
  }
  return out;
}

/** Server-side applies manifests; CRDs first and waited on until Established. */
export async function applyManifests(
  client: KubeClient,
  objects: KubeObject[],
  opts: { namespace?: string } = {},
): Promise<void> {
  const crds = objects.filter((o) => o.kind === 'CustomResourceDefinition');
  for (const crd of crds) await client.apply(R.CustomResourceDefinitions, crd, { fieldManager: 'atoll-install' });
  for (const crd of crds) {
    await waitFor(
      `CRD ${crd.metadata?.name} established`,
      async () => {
        const c = await client.get<KubeObject & { status?: { conditions?: Array<{ type: string; status: string }> } }>(
          R.CustomResourceDefinitions,
          crd.metadata!.name!,
        );
        return c.status?.conditions?.some((x) => x.type === 'Established' && x.status === 'True') ?? false;
      },
      30_000,
    );
  }
  for (const obj of objects.filter((o) => o.kind !== 'CustomResourceDefinition')) {
    const t = BY_KIND[`${obj.apiVersion}/${obj.kind}`];
    if (!t) throw new Error(`don't know how to install ${obj.apiVersion} ${obj.kind}`);
    const md = { ...obj.metadata };
    if (t.namespaced && !md.namespace) md.namespace = opts.namespace ?? 'default';
    await client.apply(t, { ...obj, metadata: md }, { fieldManager: 'atoll-install' });
  }
}
