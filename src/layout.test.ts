import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from './dev/binaries.js';

// The layout of ADR 0018, checked on the source itself: shared rules live in
// src/domain/ and depend on no component; what the image compiles (src/ minus
// tests and benchmarks) never reaches test helpers or benchmarks.

const SRC = path.join(packageRoot(), 'src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === 'web' && dir.endsWith('console') ? [] : sources(full);
    return /\.tsx?$/.test(e.name) && !/\.test\.tsx?$/.test(e.name) ? [full] : [];
  });
}

/** Every relative import of a file, as a path relative to the package root. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map((m) =>
    path.relative(packageRoot(), path.resolve(path.dirname(file), m[1]!)),
  );
}

function violations(files: string[], forbidden: RegExp): string[] {
  return files.flatMap((f) =>
    importsOf(f)
      .filter((i) => forbidden.test(i))
      .map((i) => `${path.relative(packageRoot(), f)} imports ${i}`),
  );
}

describe('source layout', () => {
  it('domain rules depend on no component that applies them', () => {
    const domain = sources(path.join(SRC, 'domain'));
    expect(domain.length).toBeGreaterThan(5);
    expect(
      violations(domain, /^src\/(controllers|gateway|webhooks|cli|console|dev|bench|runtime)\/|^src\/operator/),
    ).toEqual([]);
  });

  it('the gateway takes shared rules from src/domain, never from the controllers', () => {
    expect(violations(sources(path.join(SRC, 'gateway')), /^src\/controllers\//)).toEqual([]);
  });

  it('nothing the image compiles imports a test helper or a benchmark', () => {
    const shipped = sources(SRC).filter((f) => !f.startsWith(path.join(SRC, 'bench') + path.sep));
    expect(shipped.length).toBeGreaterThan(100);
    expect(violations(shipped, /^test\/|^src\/bench\//)).toEqual([]);
  });
});
