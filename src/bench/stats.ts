/** Small helpers the benchmark scripts share: percentiles, flags, number formatting. */

export const MiB = 2 ** 20;

/** Nearest-rank percentile (p in 0..100); NaN for no samples. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Prints the usage and exits when `--help` or `-h` is given: a bench run with defaults takes minutes. */
export function helpAndExit(usage: string): void {
  if (!process.argv.includes('--help') && !process.argv.includes('-h')) return;
  process.stdout.write(`${usage.trim()}\n`);
  process.exit(0);
}

/** A positive numeric `--name value` flag, or the fallback. */
export function numericFlag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const value = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number`);
  return value;
}

/** Fixed-point text for tables; "n/a" for NaN and infinities. */
export function fmt(n: number, digits = 1): string {
  return Number.isFinite(n) ? n.toFixed(digits) : 'n/a';
}
