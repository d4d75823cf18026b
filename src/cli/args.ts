import { parseArgs as parseNodeArgs } from 'node:util';

/**
 * One declarative table per subcommand: the parser and the `--help` text are
 * generated from the same definitions, so help always lists every flag.
 */
export interface FlagSpec {
  name: string;
  short?: string;
  /** Placeholder shown in help; a flag without one is a boolean switch. */
  value?: string;
  multiple?: boolean;
  description: string;
}

export interface CommandSpec {
  name: string;
  summary: string;
  /** Positional arguments as shown in usage, e.g. `<connection>`. */
  positionals?: string;
  /** Paragraphs printed under the usage line. */
  details?: string;
  flags: FlagSpec[];
}

export interface ParsedArgs {
  positional: string[];
  flags: Map<string, string[]>;
}

export const HELP_FLAG: FlagSpec = {
  name: 'help',
  short: 'h',
  description: 'print this help and exit (does nothing else)',
};
export const KUBECONFIG_FLAG: FlagSpec = {
  name: 'kubeconfig',
  value: 'file',
  description: 'kubeconfig to use (default: $KUBECONFIG, then ~/.kube/config, then in-cluster)',
};
export const NAMESPACE_FLAG: FlagSpec = {
  name: 'namespace',
  short: 'n',
  value: 'namespace',
  description: "the workspace namespace (default: the kubeconfig context's namespace, then default)",
};

export function wantsHelp(argv: string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).some((a) => a === '--help' || a === '-h');
}

/** Parses argv against the command's table; unknown flags and missing values are usage errors. */
export function parseCommandArgs(spec: CommandSpec, argv: string[]): ParsedArgs {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple: true }> = {};
  for (const f of [...spec.flags, HELP_FLAG])
    options[f.name] = { type: f.value ? 'string' : 'boolean', multiple: true, ...(f.short ? { short: f.short } : {}) };
  let parsed: ReturnType<typeof parseNodeArgs>;
  try {
    parsed = parseNodeArgs({ args: argv, options, strict: true, allowPositionals: true });
  } catch (err) {
    // node's messages name the flag ("Unknown option '--sett'"); add where to look.
    throw new UsageError(
      `atoll ${spec.name}: ${(err as Error).message.split('. ')[0]}\nRun \`atoll ${spec.name} --help\` for its flags.`,
    );
  }
  const flags = new Map<string, string[]>();
  for (const [k, v] of Object.entries(parsed.values)) {
    const values = (Array.isArray(v) ? v : [v]).map((x) => String(x));
    const f = spec.flags.find((x) => x.name === k);
    if (f && !f.multiple && values.length > 1)
      throw new UsageError(`atoll ${spec.name}: --${k} was given ${values.length} times; give it once`);
    flags.set(k, values);
  }
  return { positional: parsed.positionals, flags };
}

export function helpText(spec: CommandSpec): string {
  const usage = `Usage: atoll ${spec.name}${spec.positionals ? ` ${spec.positionals}` : ''}${spec.flags.length ? ' [flags]' : ''}`;
  const rows = [...spec.flags, HELP_FLAG].map((f) => {
    const left = `${f.short ? `-${f.short}, ` : '    '}--${f.name}${f.value ? ` <${f.value}>` : ''}`;
    return [left, f.description + (f.multiple ? ' (repeatable)' : '')] as const;
  });
  const width = Math.max(...rows.map(([l]) => l.length)) + 2;
  const lines = [
    usage,
    '',
    spec.summary,
    ...(spec.details ? ['', spec.details] : []),
    '',
    'Flags:',
    ...rows.map(([l, d]) => `  ${l.padEnd(width)}${d}`),
  ];
  return lines.join('\n') + '\n';
}

export function flag(args: ParsedArgs, ...names: string[]): string | undefined {
  for (const n of names) {
    const v = args.flags.get(n);
    if (v?.length) return v[v.length - 1];
  }
  return undefined;
}

export function flags(args: ParsedArgs, name: string): string[] {
  return args.flags.get(name) ?? [];
}

export function hasFlag(args: ParsedArgs, name: string): boolean {
  return (args.flags.get(name)?.length ?? 0) > 0;
}

/** `--set key=value` pairs, split once at the first `=`. */
export function keyValues(args: ParsedArgs, name: string): Array<[string, string]> {
  return flags(args, name).map((kv) => {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new UsageError(`--${name} ${kv}: expected key=value`);
    return [kv.slice(0, eq), kv.slice(eq + 1)];
  });
}

export class UsageError extends Error {
  override readonly name = 'UsageError';
}
