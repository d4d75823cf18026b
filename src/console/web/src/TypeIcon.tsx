const PALETTE: Record<string, string> = {
  monitoring: 'tone-violet',
  analytics: 'tone-blue',
  database: 'tone-amber',
  storage: 'tone-teal',
  messaging: 'tone-pink',
  api: 'tone-indigo',
  other: 'tone-slate',
};

/** A type's initial on its category colour: recognisable without shipping third-party logos. */
export function TypeIcon({ name, category, size = 'md' }: { name: string; category?: string; size?: 'md' | 'lg' }) {
  const initial = (name.trim()[0] ?? '?').toUpperCase();
  return (
    <span className={`type-icon type-icon-${size} ${PALETTE[category ?? 'other'] ?? 'tone-slate'}`} aria-hidden="true">
      {initial}
    </span>
  );
}
