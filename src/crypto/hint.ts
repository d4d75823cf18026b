/**
 * The hint shown in status and printer columns (spec invariant 5): at most
 * the last 4 characters, and never more than a quarter of the value, so a
 * hint can tell two credentials apart without helping anyone guess one.
 * Length is counted in Unicode code points so a surrogate pair is never split
 * and never counts double.
 *
 *   < 8 → ""   8–11 → "…" + 2   12–15 → "…" + 3   ≥ 16 → "…" + 4
 */
export function credentialHint(plaintext: string): string {
  const codePoints = Array.from(plaintext);
  const shown = Math.min(4, Math.floor(codePoints.length / 4));
  if (codePoints.length < 8 || shown === 0) return '';
  return '…' + codePoints.slice(-shown).join('');
}
