/** Turns typed-in text into the JSON type the IntegrationType's settings schema declares. */
export function coerceSetting(
  schema: { properties?: Record<string, { type?: string | string[] }> } | undefined,
  key: string,
  raw: string,
): unknown {
  const declared = schema?.properties?.[key]?.type;
  const types = Array.isArray(declared) ? declared : declared ? [declared] : [];
  if ((types.includes('integer') || types.includes('number')) && raw.trim() !== '' && Number.isFinite(Number(raw)))
    return Number(raw);
  if (types.includes('boolean') && (raw === 'true' || raw === 'false')) return raw === 'true';
  if (types.length === 0 && /^(true|false)$/.test(raw)) return raw === 'true';
  if (types.length === 0 && /^\d+$/.test(raw)) return Number(raw);
  return raw;
}
