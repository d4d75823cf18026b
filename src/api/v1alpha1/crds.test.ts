/**
 * Structural checks of the CRDs that an API server would only reveal one
 * failure at a time, or not at all: every field documented for `kubectl
 * explain`, every size bounded (so CEL cost estimates stay within budget), every
 * CEL rule explained. CEL behaviour itself is exercised against a real API
 * server with testdata/crd-validation-cases.yaml.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { EXTERNAL_CONNECTION, GROUP, INTEGRATION_TYPE, VERSION, WORKSPACE } from './index.js';
import { CRD_FILES, findPackageRoot, type ApiKind } from './schemas.js';

type Schema = Record<string, unknown> & {
  type?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
  additionalProperties?: Schema | boolean;
  description?: string;
};

interface Crd {
  metadata: { name: string };
  spec: {
    group: string;
    scope: string;
    names: {
      kind: string;
      listKind: string;
      plural: string;
      singular: string;
      categories: string[];
      shortNames: string[];
    };
    versions: {
      name: string;
      served: boolean;
      storage: boolean;
      additionalPrinterColumns: { name: string; jsonPath: string }[];
      schema: { openAPIV3Schema: Schema };
    }[];
  };
}

const root = findPackageRoot();
const crds = Object.fromEntries(
  (Object.keys(CRD_FILES) as ApiKind[]).map((kind) => [
    kind,
    parse(readFileSync(path.join(root, CRD_FILES[kind]), 'utf8')) as Crd,
  ]),
) as Record<ApiKind, Crd>;

/** Every schema node with its field path, skipping metadata (the API server forbids describing it). */
function* walk(schema: Schema, at: string): Generator<[string, Schema]> {
  yield [at, schema];
  for (const [name, child] of Object.entries(schema.properties ?? {})) {
    if (at === '' && name === 'metadata') continue;
    yield* walk(child, at ? `${at}.${name}` : name);
  }
  if (schema.items) yield* walk(schema.items, `${at}[]`);
  if (typeof schema.additionalProperties === 'object') yield* walk(schema.additionalProperties, `${at}.*`);
}

const schemaOf = (kind: ApiKind): Schema => crds[kind].spec.versions[0]!.schema.openAPIV3Schema;

describe.each(Object.keys(CRD_FILES) as ApiKind[])('%s CRD', (kind) => {
  const crd = crds[kind];
  const info = { Workspace: WORKSPACE, ExternalConnection: EXTERNAL_CONNECTION, IntegrationType: INTEGRATION_TYPE }[
    kind
  ];

  it('is atoll.dev/v1alpha1, served and stored, in category atoll, with short names', () => {
    expect(crd.metadata.name).toBe(`${info.plural}.${GROUP}`);
    expect(crd.spec.group).toBe(GROUP);
    expect(crd.spec.scope).toBe(info.namespaced ? 'Namespaced' : 'Cluster');
    expect(crd.spec.names).toMatchObject({
      kind: info.kind,
      listKind: info.listKind,
      plural: info.plural,
      singular: info.singular,
    });
    expect(crd.spec.names.categories).toEqual(['atoll']);
    expect(crd.spec.names.shortNames.length).toBeGreaterThan(0);
    expect(crd.spec.versions).toHaveLength(1);
    expect(crd.spec.versions[0]).toMatchObject({ name: VERSION, served: true, storage: true });
  });

  it('documents every field for kubectl explain', () => {
    const undocumented = [...walk(schemaOf(kind), '')].filter(([, s]) => !s.description).map(([at]) => at || '(root)');
    expect(undocumented).toEqual([]);
  });

  it('bounds every string, list and map so CEL cost estimates stay within budget', () => {
    // apiVersion and kind are checked by the API server against the resource, never free text;
    // a date-time's length is bounded by its format, which the CEL cost estimator knows.
    const unbounded = [...walk(schemaOf(kind), '')]
      .filter(([at]) => at !== 'apiVersion' && at !== 'kind')
      .filter(([, s]) => {
        if (s.type === 'string')
          return s['maxLength'] === undefined && s['enum'] === undefined && s['format'] !== 'date-time';
        if (s.type === 'array') return s['maxItems'] === undefined;
        if (s.type === 'object' && !s.properties) return s['maxProperties'] === undefined;
        return false;
      })
      .map(([at]) => at);
    expect(unbounded).toEqual([]);
  });

  it('explains every CEL rule with a message that names the field', () => {
    const rules = [...walk(schemaOf(kind), '')].flatMap(([at, s]) =>
      (
        (s['x-kubernetes-validations'] as
          { rule: string; message?: string; messageExpression?: string }[] | undefined) ?? []
      ).map((r) => ({ at, ...r })),
    );
    expect(rules.length).toBeGreaterThan(0);
    for (const r of rules) {
      const text = r.message ?? r.messageExpression ?? '';
      expect(text, `${r.at}: ${r.rule}`).toMatch(/[a-zA-Z]+(\.[a-zA-Z[\]<>]+)*|metadata\.name/);
      expect(text.length, `${r.at}: ${r.rule}`).toBeGreaterThan(20);
    }
  });
});

describe('printer columns', () => {
  const columns = (kind: ApiKind): string[][] =>
    crds[kind].spec.versions[0]!.additionalPrinterColumns.map((c) => [c.name.toUpperCase(), c.jsonPath]);

  it('Workspace shows DISPLAY NAME, READY, REASON, CONNECTIONS, KEY, AGE', () => {
    expect(columns('Workspace').map(([n]) => n)).toEqual([
      'DISPLAY NAME',
      'READY',
      'REASON',
      'CONNECTIONS',
      'KEY',
      'AGE',
    ]);
  });

  it('ExternalConnection shows TYPE, READY, REASON, CREDENTIAL (the hint), LAST PROBE, LAST USED, AGE', () => {
    expect(columns('ExternalConnection')).toEqual([
      ['TYPE', '.spec.type'],
      ['READY', '.status.conditions[?(@.type=="Ready")].status'],
      ['REASON', '.status.conditions[?(@.type=="Ready")].reason'],
      ['CREDENTIAL', '.status.credentialHint'],
      ['LAST PROBE', '.status.lastProbe.time'],
      ['LAST USED', '.status.usage.lastUsedAt'],
      ['AGE', '.metadata.creationTimestamp'],
    ]);
  });

  it('IntegrationType shows DISPLAY NAME, CATEGORY, PROBE, AGE', () => {
    expect(columns('IntegrationType').map(([n]) => n)).toEqual(['DISPLAY NAME', 'CATEGORY', 'PROBE', 'AGE']);
  });
});

describe('the write-only value rule', () => {
  it('tells the user how to seal, naming the field', () => {
    const credentials = schemaOf('ExternalConnection').properties!['spec']!.properties!['credentials']!;
    const rules = credentials['x-kubernetes-validations'] as { rule: string; messageExpression?: string }[];
    const valueRule = rules.find((r) => r.rule === 'self.all(k, !has(self[k].value))');
    expect(valueRule?.messageExpression).toContain(
      "'spec.credentials.' + self.filter(k, has(self[k].value))[0] + '.value is write-only",
    );
    expect(valueRule?.messageExpression).toContain('`atoll seal`');
    expect(valueRule?.messageExpression).toContain('`kubectl atoll seal`');
    // kubectl create --dry-run=server output carries uid and generation: the second apply fails.
    expect(valueRule?.messageExpression).not.toContain('dry-run');
  });

  it('secretKeyRef has no namespace field', () => {
    const entry = schemaOf('ExternalConnection').properties!['spec']!.properties!['credentials']!
      .additionalProperties as Schema;
    expect(Object.keys(entry.properties!['secretKeyRef']!.properties!)).toEqual(['name', 'key']);
  });
});

describe('testdata/crd-validation-cases.yaml', () => {
  const cases = parse(readFileSync(path.join(root, 'src/api/v1alpha1/testdata/crd-validation-cases.yaml'), 'utf8')) as {
    name: string;
    object: { kind: string; metadata: { name: string } };
    update?: { kind: string };
    rejects?: string[];
  }[];

  it('has uniquely named cases for every kind, both accepted and rejected', () => {
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
    expect(new Set(cases.map((c) => c.object.metadata.name)).size).toBe(cases.length);
    for (const kind of Object.keys(CRD_FILES)) {
      expect(cases.some((c) => c.object.kind === kind && !c.rejects)).toBe(true);
      expect(cases.some((c) => c.object.kind === kind && c.rejects)).toBe(true);
    }
  });
});
