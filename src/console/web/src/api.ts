/** Talking to the console backend: same origin, session cookie, errors in words. */

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly reason?: string,
  ) {
    super(message);
  }
}

interface KubeStatus {
  kind?: string;
  message?: string;
  reason?: string;
  details?: { causes?: Array<{ field?: string; message?: string }> };
}

/** Turns a Kubernetes Status (or our own) into one sentence a person can act on. */
export function describeFailure(status: number, body: unknown): string {
  const st = (body ?? {}) as KubeStatus;
  let message = typeof st.message === 'string' ? st.message : '';
  // Admission denials read 'admission webhook "x" denied the request: <why>': keep the why.
  message = message.replace(/^admission webhook "[^"]*" denied the request:\s*/, '');
  // API validation: 'ExternalConnection.atoll.dev "x" is invalid: spec.settings.baseURL: Invalid value: ...'
  message = message.replace(/^[A-Za-z]+\.atoll\.dev "[^"]*" is invalid:\s*/, '');
  if (status === 403 && !message) message = 'You do not have permission to do this.';
  if (status === 401) message = message || 'Your sign-in has expired. Sign in again.';
  if (status === 409 && st.reason === 'AlreadyExists')
    message = 'A connection with this name already exists in this workspace. Choose another name.';
  if (status === 409 && st.reason === 'Conflict')
    message = 'Someone else changed this connection at the same time. Reload and try again.';
  return message || `The request failed (HTTP ${status}).`;
}

export async function api<T>(
  method: string,
  path: string,
  body?: unknown,
  contentType = 'application/json',
): Promise<T> {
  const res = await fetch(path, {
    method,
    credentials: 'same-origin',
    cache: 'no-store',
    headers: {
      Accept: 'application/json',
      ...(method !== 'GET' ? { 'X-Atoll-Console': '1' } : {}),
      ...(body !== undefined ? { 'Content-Type': contentType } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!res.ok)
    throw new ApiError(res.status, describeFailure(res.status, parsed), (parsed as KubeStatus | undefined)?.reason);
  return parsed as T;
}

const ATOLL = '/api/kube/apis/atoll.dev/v1alpha1';

export const paths = {
  types: () => `${ATOLL}/integrationtypes`,
  connections: (ns: string) => `${ATOLL}/namespaces/${encodeURIComponent(ns)}/externalconnections`,
  connection: (ns: string, name: string) =>
    `${ATOLL}/namespaces/${encodeURIComponent(ns)}/externalconnections/${encodeURIComponent(name)}`,
};

export const FIELD_MANAGER = 'atoll-console';
