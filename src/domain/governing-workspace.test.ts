import { describe, expect, it } from 'vitest';
import type { Workspace } from '../api/v1alpha1/index.js';
import type { KubeObject } from '../kube/client.js';
import { governingWorkspace, oldestFirst, workspaceOf } from './governing-workspace.js';

function ws(name: string, created: string, deleting = false): Workspace & KubeObject {
  return {
    apiVersion: 'atoll.dev/v1alpha1',
    kind: 'Workspace',
    metadata: {
      name,
      namespace: 'acme',
      creationTimestamp: created,
      ...(deleting ? { deletionTimestamp: '2026-12-01T10:00:00Z' } : {}),
    },
    spec: {},
  };
}

describe('the governing Workspace', () => {
  it('is the oldest, with the name breaking a tie', () => {
    const items = [ws('b', '2026-01-02T00:00:00Z'), ws('c', '2026-01-01T00:00:00Z'), ws('a', '2026-01-01T00:00:00Z')];
    expect(oldestFirst(items).map((w) => w.metadata?.name)).toEqual(['a', 'c', 'b']);
    expect(governingWorkspace(items)?.metadata?.name).toBe('a');
  });

  it('is never one being deleted: the next oldest governs, or none', () => {
    expect(
      governingWorkspace([ws('old', '2026-01-01T00:00:00Z', true), ws('new', '2026-02-01T00:00:00Z')])?.metadata?.name,
    ).toBe('new');
    expect(governingWorkspace([ws('old', '2026-01-01T00:00:00Z', true)])).toBeUndefined();
    expect(governingWorkspace([])).toBeUndefined();
  });

  it('workspaceOf applies the rule to the namespace a lister returns', () => {
    const listed: Record<string, Array<Workspace & KubeObject>> = {
      acme: [ws('second', '2026-03-01T00:00:00Z'), ws('first', '2026-02-01T00:00:00Z')],
    };
    const workspaces = { list: (namespace: string) => listed[namespace] ?? [] };
    expect(workspaceOf({ workspaces }, 'acme')?.metadata?.name).toBe('first');
    expect(workspaceOf({ workspaces }, 'other')).toBeUndefined();
  });
});
