import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { findPackageRoot } from './schemas.js';

interface Generator {
  renderApiTypes(crds: { file: string; text: string }[]): string;
  readCrds(root: string): { file: string; text: string }[];
  OUTPUT_FILE: string;
}

const root = findPackageRoot();
const generator = (await import(path.join(root, 'hack/generate-api-types.mjs'))) as Generator;

/** A minimal CRD exercising every schema shape the generator maps. */
function sampleCrd(spec: Record<string, unknown>): { file: string; text: string } {
  const crd = {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    spec: {
      group: 'example.dev',
      names: { kind: 'Gadget', listKind: 'GadgetList', plural: 'gadgets' },
      versions: [
        {
          name: 'v1',
          storage: true,
          schema: { openAPIV3Schema: { type: 'object', required: ['spec'], properties: { spec } } },
        },
      ],
    },
  };
  return { file: 'gadget.yaml', text: JSON.stringify(crd) };
}

describe('generate-api-types', () => {
  it('matches the committed generated.ts (run node hack/generate-api-types.mjs after changing a CRD)', () => {
    const committed = readFileSync(path.join(root, generator.OUTPUT_FILE), 'utf8');
    expect(generator.renderApiTypes(generator.readCrds(root))).toBe(committed);
  });

  it('maps enums, required fields, arrays, maps and free-form objects', () => {
    const out = generator.renderApiTypes([
      sampleCrd({
        type: 'object',
        description: 'The gadget.',
        required: ['mode'],
        properties: {
          mode: { type: 'string', enum: ['on', "it's"], description: 'Mode.' },
          size: { type: 'integer', default: 3 },
          parts: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' } } } },
          labels: { type: 'object', additionalProperties: { type: 'string' } },
          extra: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
        },
      }),
    ]);
    expect(out).toContain("apiVersion: 'example.dev/v1';");
    expect(out).toContain('  spec: GadgetSpec;');
    expect(out).toContain("  mode: 'on' | 'it\\'s';");
    expect(out).toContain('  size?: number;');
    expect(out).toContain('Default: `3`.');
    expect(out).toContain('  parts?: GadgetPart[];');
    expect(out).toContain('export interface GadgetPart {');
    expect(out).toContain('  labels?: Record<string, string>;');
    expect(out).toContain('  extra?: Record<string, unknown>;');
    expect(out).toContain('export interface GadgetList {');
  });

  it('refuses to give two different schemas the same name', () => {
    const a = sampleCrd({
      type: 'object',
      properties: { x: { type: 'object', properties: { a: { type: 'string' } } } },
    });
    const b = sampleCrd({
      type: 'object',
      properties: { x: { type: 'object', properties: { b: { type: 'string' } } } },
    });
    expect(() => generator.renderApiTypes([a, b])).toThrow(/both be named GadgetX/);
  });
});
