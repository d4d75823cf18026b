import type { Condition, Connection } from './types';

export function condition(conn: Connection, type: string): Condition | undefined {
  return conn.status?.conditions?.find((c) => c.type === type);
}

/** "CiphertextRejected" -> "Ciphertext rejected". */
export function words(reason: string | undefined): string {
  if (!reason) return '';
  const spaced = reason.replace(/([a-z0-9])([A-Z])/g, '$1 $2').replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2');
  return (
    spaced.charAt(0) +
    spaced
      .slice(1)
      .toLowerCase()
      .replace(/\b(tls|dns|kms|url|api|http)\b/g, (m) => m.toUpperCase())
  );
}

export function relativeTime(iso: string | undefined, now = Date.now()): string {
  if (!iso) return 'never';
  const s = Math.round((now - Date.parse(iso)) / 1000);
  if (!Number.isFinite(s)) return 'never';
  if (s < 10) return 'just now';
  if (s < 60) return `${s} seconds ago`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} minute${m === 1 ? '' : 's'} ago`;
  const h = Math.round(m / 60);
  if (h < 48) return `${h} hour${h === 1 ? '' : 's'} ago`;
  return new Date(iso).toLocaleDateString();
}

export const CATEGORY_LABELS: Record<string, string> = {
  monitoring: 'Monitoring',
  analytics: 'Analytics',
  database: 'Database',
  storage: 'Storage',
  messaging: 'Messaging',
  api: 'API',
  other: 'Other',
};

export type Tone = 'success' | 'danger' | 'warning' | 'neutral' | 'progress';

/** The one summary a list shows first: ready, failing (and why), or waiting. */
export function overall(conn: Connection): { label: string; tone: Tone } {
  const ready = condition(conn, 'Ready');
  if (conn.metadata.deletionTimestamp) return { label: 'Deleting', tone: 'neutral' };
  if (!ready || ready.status === 'Unknown') return { label: 'Checking', tone: 'progress' };
  if (ready.status === 'True') return { label: 'Ready', tone: 'success' };
  return {
    label: words(ready.reason) || 'Not ready',
    tone: ready.reason === 'Pending' || ready.reason === 'Probing' ? 'warning' : 'danger',
  };
}
