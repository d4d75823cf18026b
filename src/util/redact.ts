/** Shorter values are not redacted: they would mangle ordinary words and protect nothing. */
const MIN_REDACTED_LENGTH = 4;

/**
 * `text` with every occurrence of each secret replaced by `[redacted]`: for
 * texts atoll must pass on (a probe's message, an error a KMS sent) that may
 * quote a credential someone echoed back.
 */
export function redactSecrets(text: string, secrets: Iterable<string | undefined>): string {
  let clean = text;
  for (const secret of secrets) {
    if (secret !== undefined && secret.length >= MIN_REDACTED_LENGTH) clean = clean.split(secret).join('[redacted]');
  }
  return clean;
}
