import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../src/dev/binaries.js';

/** Recipes that name repository files break silently when a file is renamed: check every name. */
describe('hack/e2e-kind.sh', () => {
  it('names only files that exist', () => {
    const root = packageRoot();
    const script = readFileSync(path.join(root, 'hack', 'e2e-kind.sh'), 'utf8');
    const named = [
      ...new Set(
        [...script.matchAll(/(?<![\w$/.-])((?:config|hack|docs|charts)\/[\w./-]+)/g)].map((m) =>
          m[1]!.replace(/[.]$/, ''),
        ),
      ),
    ];
    expect(named).toContain('config/samples/01-workspace.yaml');
    expect(named).toContain('config/samples/workloads/11-rbac.yaml');
    const missing = named.filter((f) => !existsSync(path.join(root, f)));
    expect(missing).toEqual([]);
  });
});
