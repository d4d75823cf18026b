#!/usr/bin/env node
import { agentCommand } from './cli/agent.js';
import { helpText, parseCommandArgs, UsageError, wantsHelp, type ParsedArgs } from './cli/args.js';
import { COMMANDS, type CommandName } from './cli/commands.js';
import { connect, rotate, status, testConnection } from './cli/connection-commands.js';
import { consoleCommand } from './cli/console.js';
import { controllerCommand } from './cli/controller.js';
import { dev } from './cli/dev.js';
import { gatewayCommand } from './cli/gateway.js';
import { seal } from './cli/seal.js';
import { rebind } from './cli/rebind.js';
import { ConfigError } from './config/operator-config.js';
import { KubeApiError } from './kube/errors.js';

const handlers: Record<CommandName, (args: ParsedArgs) => Promise<number>> = {
  controller: () => controllerCommand(),
  gateway: () => gatewayCommand(),
  agent: agentCommand,
  console: consoleCommand,
  dev,
  seal,
  connect,
  test: testConnection,
  rotate,
  rebind,
  status,
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
  return handlers[name as CommandName](parseCommandArgs(spec, rest));
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
