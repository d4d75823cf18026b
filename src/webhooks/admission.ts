/** The parts of admission.k8s.io/v1 AdmissionReview that atoll reads and writes. */
export interface AdmissionRequest {
  uid: string;
  kind: { group: string; version: string; kind: string };
  operation: 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';
  namespace?: string;
  name?: string;
  dryRun?: boolean;
  userInfo?: { username?: string; groups?: string[] };
  object?: unknown;
  oldObject?: unknown;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: { code: number; reason?: string; message: string; details?: { retryAfterSeconds?: number } };
  patchType?: 'JSONPatch';
  patch?: string;
  warnings?: string[];
  /** Added to the API server's audit event (keys prefixed with the webhook name), at every audit level. */
  auditAnnotations?: Record<string, string>;
}

export type JsonPatchOp = { op: 'add' | 'replace' | 'remove'; path: string; value?: unknown };

export function allow(uid: string, patch?: JsonPatchOp[]): AdmissionResponse {
  if (!patch || patch.length === 0) return { uid, allowed: true };
  return { uid, allowed: true, patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64') };
}

/** A refusal whose message is shown to the user by kubectl: it names the field and the fix. */
export function deny(uid: string, message: string, code = 422, reason = 'Invalid'): AdmissionResponse {
  return { uid, allowed: false, status: { code, reason, message } };
}

/**
 * A refusal for too many requests: the API server passes code, reason and
 * details through, so the client gets HTTP 429 with a Retry-After header.
 */
export function tooManyRequests(uid: string, message: string, retryAfterSeconds: number): AdmissionResponse {
  return {
    uid,
    allowed: false,
    status: { code: 429, reason: 'TooManyRequests', message, details: { retryAfterSeconds } },
  };
}

/** Escapes a JSON-pointer segment (RFC 6901). */
export function pointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}
