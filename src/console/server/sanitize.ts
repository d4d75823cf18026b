/**
 * What the panel receives of an atoll object. The API never returns a
 * plaintext credential, and the console does not pass on the ciphertext
 * either (the panel only needs to know a field is sealed), nor
 * managedFields and last-applied-configuration (noise that could only ever
 * echo what a client sent).
 */

const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function sanitizeObject(obj: Json): Json {
  const metadata = obj.metadata;
  if (isObject(metadata)) {
    delete metadata.managedFields;
    if (isObject(metadata.annotations)) delete metadata.annotations[LAST_APPLIED];
  }
  const spec = obj.spec;
  if (isObject(spec) && isObject(spec.credentials)) {
    for (const [field, source] of Object.entries(spec.credentials)) {
      if (!isObject(source)) continue;
      const kept: Json = {};
      if (source.sealed) kept.sealed = true;
      if (isObject(source.secretKeyRef))
        kept.secretKeyRef = { name: source.secretKeyRef.name, key: source.secretKeyRef.key };
      spec.credentials[field] = kept;
    }
  }
  return obj;
}

/** Sanitizes a single object, a list, or a Status (left as it is). */
export function sanitizeResponse(body: unknown): unknown {
  if (!isObject(body)) return body;
  if (Array.isArray(body.items)) {
    body.items = (body.items as unknown[]).map((item) => (isObject(item) ? sanitizeObject(item) : item));
    delete (body.metadata as Json | undefined)?.selfLink;
    return body;
  }
  return sanitizeObject(body);
}
