import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

/** The first load of the Integrations panel may ship at most this much gzipped JavaScript. */
export const FIRST_LOAD_BUDGET_BYTES = 350 * 1024;

/**
 * Gzipped bytes of the JavaScript a browser fetches on the first load: the
 * scripts and module preloads index.html names (lazy chunks are not counted,
 * they load later).
 */
export function firstLoadJavaScript(webRoot: string): {
  files: Array<{ file: string; gzipBytes: number }>;
  totalGzipBytes: number;
} {
  const html = readFileSync(path.join(webRoot, 'index.html'), 'utf8');
  const refs = [...html.matchAll(/<(?:script[^>]*\ssrc|link[^>]*rel="modulepreload"[^>]*\shref)="([^"]+\.js)"/g)].map(
    (m) => m[1]!,
  );
  const files = [...new Set(refs)].map((ref) => ({
    file: ref,
    gzipBytes: gzipSync(readFileSync(path.join(webRoot, ref.replace(/^\//, ''))), { level: 9 }).length,
  }));
  return { files, totalGzipBytes: files.reduce((n, f) => n + f.gzipBytes, 0) };
}

// `npm run build` runs this after vite: prints the measure and fails the build over budget.
if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const webRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'web');
  const { files, totalGzipBytes } = firstLoadJavaScript(webRoot);
  const kb = (n: number) => `${(n / 1024).toFixed(1)} KB`;
  process.stdout.write(
    `console first load: ${kb(totalGzipBytes)} gzipped JavaScript (budget ${kb(FIRST_LOAD_BUDGET_BYTES)}) in ${files.map((f) => `${f.file} ${kb(f.gzipBytes)}`).join(', ')}\n`,
  );
  if (files.length === 0 || totalGzipBytes > FIRST_LOAD_BUDGET_BYTES) {
    process.stderr.write('console bundle over budget (or no script found in index.html)\n');
    process.exit(1);
  }
}
