import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { API_VERSION } from './index.js';
import { apiValidators, createApiValidators, findPackageRoot, type ApiKind } from './schemas.js';

const root = findPackageRoot();
const validators = apiValidators();
const tmp = mkdtempSync(path.join(tmpdir(), 'atoll-schemas-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const isApiKind = (kind: unknown): kind is ApiKind =>
  kind === 'Workspace' || kind === 'ExternalConnection' || kind === 'IntegrationType';

describe('findPackageRoot', () => {
  it('finds the repository root from this module, as a URL or a path', () => {
    expect(readFileSync(path.join(root, 'package.json'), 'utf8')).toContain('"name": "atoll"');
    expect(findPackageRoot(pathToFileURL(path.join(root, 'dist/api/v1alpha1/schemas.js')))).toBe(root);
    expect(findPackageRoot(path.join(root, 'src/api/v1alpha1/schemas.ts'))).toBe(root);
  });

  it('stops at the nearest package.json', () => {
    mkdirSync(path.join(tmp, 'pkg/dist/api'), { recursive: true });
    writeFileSync(path.join(tmp, 'pkg/package.json'), '{}');
    expect(findPackageRoot(path.join(tmp, 'pkg/dist/api/schemas.js'))).toBe(path.join(tmp, 'pkg'));
  });

  it('says so when a package has no crds/', () => {
    expect(() => createApiValidators(path.join(tmp, 'pkg'))).toThrow(
      /cannot read CRD schema: crds\/atoll.dev_workspaces.yaml/,
    );
  });
});

describe('API validators', () => {
  it('accept every sample in config/samples', () => {
    const dir = path.join(root, 'config/samples');
    const objects = readdirSync(dir)
      .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
      .flatMap((f) =>
        parseAllDocuments(readFileSync(path.join(dir, f), 'utf8')).map((d) => d.toJS() as { kind: unknown }),
      )
      .filter((o) => isApiKind(o.kind));
    expect(objects.map((o) => o.kind).sort()).toEqual(['ExternalConnection', 'ExternalConnection', 'Workspace']);
    for (const o of objects) expect(validators[o.kind as ApiKind](o)).toMatchObject({ ok: true });
  });

  it('accept the IntegrationType example of docs/reference/integration-type-format.md', () => {
    const doc = readFileSync(path.join(root, 'docs/reference/integration-type-format.md'), 'utf8');
    const example = parse(/```yaml\n([\s\S]*?)```/.exec(doc)![1]!) as { kind: string };
    expect(example.kind).toBe('IntegrationType');
    expect(validators.IntegrationType(example)).toMatchObject({ ok: true });
  });

  it('accept every case the API server accepts in testdata/crd-validation-cases.yaml', () => {
    const cases = parse(
      readFileSync(path.join(root, 'src/api/v1alpha1/testdata/crd-validation-cases.yaml'), 'utf8'),
    ) as {
      object: { kind: ApiKind };
      rejects?: string[];
    }[];
    for (const c of cases.filter((c) => !c.rejects)) {
      expect(validators[c.object.kind]({ apiVersion: API_VERSION, ...c.object })).toMatchObject({ ok: true });
    }
  });

  it('name each failing field the way kubectl does', () => {
    const result = validators.Workspace({
      apiVersion: API_VERSION,
      kind: 'Workspace',
      metadata: { name: 'w' },
      spec: {
        members: [
          { kind: 'User', name: 'ava', role: 'owner' },
          { kind: 'Robot', role: 'viewer' },
        ],
      },
      status: {
        conditions: [{ type: 'Ready', status: 'Maybe', reason: 'x', message: '', lastTransitionTime: 'yesterday' }],
      },
    });
    expect(result).toEqual({
      ok: false,
      problems: [
        'spec.members[0].role: must be equal to one of the allowed values (viewer, editor, admin)',
        "spec.members[1].name: must have required property 'name'",
        'spec.members[1].kind: must be equal to one of the allowed values (User, Group, ServiceAccount)',
        'status.conditions[0].status: must be equal to one of the allowed values (True, False, Unknown)',
        'status.conditions[0].lastTransitionTime: must match format "date-time"',
      ],
    });
  });

  it('require spec', () => {
    expect(validators.IntegrationType({ apiVersion: API_VERSION, kind: 'IntegrationType', metadata: {} })).toEqual({
      ok: false,
      problems: ["spec: must have required property 'spec'"],
    });
  });

  it('never echo a credential in a problem', () => {
    const secret = `S3CRET-${'k'.repeat(8200)}`;
    const result = validators.ExternalConnection({
      apiVersion: API_VERSION,
      kind: 'ExternalConnection',
      metadata: { name: 'c' },
      spec: { type: 'http-api', credentials: { token: { value: secret }, other: { sealed: 42 } } },
    });
    expect(result.ok).toBe(false);
    const text = JSON.stringify(result);
    expect(text).toContain('spec.credentials.token.value: must NOT have more than 8192 characters');
    expect(text).toContain('spec.credentials.other.sealed: must be string');
    expect(text).not.toContain('S3CRET');
  });

  it('return the object typed when it is valid', () => {
    const result = validators.ExternalConnection({
      apiVersion: API_VERSION,
      kind: 'ExternalConnection',
      metadata: { name: 'c', namespace: 'acme' },
      spec: { type: 'postgresql', credentials: { password: { secretKeyRef: { name: 'db', key: 'password' } } } },
    });
    if (!result.ok) throw new Error(result.problems.join('; '));
    expect(result.value.spec.credentials?.['password']?.secretKeyRef?.name).toBe('db');
  });
});
