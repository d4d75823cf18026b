#!/usr/bin/env node
import { helpText, parseCommandArgs, UsageError, wantsHelp, type ParsedArgs } from './cli/args.js';
import { COMMANDS, type CommandName } from './cli/commands.js';
import { ConfigError } from './config/operator-config.js';
import { KubeApiError } from './kube/errors.js';

type Handler = (args: ParsedArgs) => Promise<number>;

/**
 * Each command's module loads only when that command runs: a long-running
 * `atoll controller` must not carry the gateway's HTTP client, the console or
 * the dev control plane (ADR 0035).
 */
const handlers: Record<CommandName, () => Promise<Handler>> = {
  controller: async () => (await import('./cli/controller.js')).controllerCommand,
  gateway: async () => (await import('./cli/gateway.js')).gatewayCommand,
  agent: async () => (await import('./cli/agent.js')).agentCommand,
  console: async () => (await import('./cli/console.js')).consoleCommand,
  dev: async () => (await import('./cli/dev.js')).dev,
  seal: async () => (await import('./cli/seal.js')).seal,
  connect: async () => (await import('./cli/connection-commands.js')).connect,
  test: async () => (await import('./cli/connection-commands.js')).testConnection,
  rotate: async () => (await import('./cli/connection-commands.js')).rotate,
  rebind: async () => (await import('./cli/rebind.js')).rebind,
  status: async () => (await import('./cli/connection-commands.js')).status,
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length)) + 3;
  const lines = Object.values(COMMANDS).map((c) => `  ${c.name.padEnd(width)}${c.summary}`);
  return `atoll: per-workspace external connections for Kubernetes\n\nUsage: atoll <command> [flags]\n${lines.join('\n')}\n\nRun \`atoll <command> --help\` for a command's flags.\n`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    const topic = name === 'help' ? rest[0] : undefined;
    if (topic && Object.hasOwn(COMMANDS, topic)) process.stdout.write(helpText(COMMANDS[topic as CommandName]));
    else (name ? process.stdout : process.stderr).write(usage());
    return name ? 0 : 64;
  }
  if (!Object.hasOwn(COMMANDS, name)) {
    process.stderr.write(`atoll: unknown command "${name}"\n\n${usage()}`);
    return 64;
  }
  const spec = COMMANDS[name as CommandName];
  // Help is checked before anything else runs: `atoll dev --help` must not wipe or start anything.
  if (wantsHelp(rest)) {
    process.stdout.write(helpText(spec));
    return 0;
  }
  const args = parseCommandArgs(spec, rest);
  return (await handlers[name as CommandName]())(args);
}

// A command waiting for input that never comes (stdin closed mid-prompt) would
// otherwise let the event loop drain and exit 0 having done nothing.
process.exitCode = 1;
process.once('beforeExit', () => {
  process.stderr.write('error: input ended before every answer was given (stdin closed); nothing was created\n');
  process.exit(1);
});

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    // Only messages we wrote ourselves reach the terminal: they never contain credentials.
    if (err instanceof UsageError || err instanceof ConfigError) process.stderr.write(`${err.message}\n`);
    else if (err instanceof KubeApiError) process.stderr.write(`error: ${err.message}\n`);
    else process.stderr.write(`error: ${(err as Error)?.name ?? 'Error'}: ${(err as Error)?.message ?? String(err)}\n`);
    process.exit(err instanceof UsageError ? 64 : 1);
  },
);
