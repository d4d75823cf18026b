/**
 * A module (or anything costly) loaded on first call and shared by every call
 * after it. A failed load is not remembered: the next call tries again (a
 * transient EMFILE must not disable a KMS provider until restart). ADR 0035.
 */
export function loadOnce<T>(load: () => Promise<T>): () => Promise<T> {
  let loaded: Promise<T> | undefined;
  return () =>
    (loaded ??= load().catch((err: unknown) => {
      loaded = undefined;
      throw err;
    }));
}
