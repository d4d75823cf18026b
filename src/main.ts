#!/usr/bin/env node
import { agentCommand } from './cli/agent.js';
import { parseArgs, UsageError } from './cli/args.js';
import { connect, rotate, status, testConnection } from './cli/connection-commands.js';
import { consoleCommand } from './cli/console.js';
import { controllerCommand } from './cli/controller.js';
import { dev } from './cli/dev.js';
import { gatewayCommand } from './cli/gateway.js';
import { seal } from './cli/seal.js';
import { ConfigError } from './config/operator-config.js';
import { KubeApiError } from './kube/errors.js';

const USAGE = `atoll: per-workspace external connections for Kubernetes

Usage: atoll <command> [flags]
  controller   run the operator (reconcilers, admission webhooks)
  gateway      run the credential-injecting HTTP gateway
  agent        keep a connection's credentials in files (sidecar)
  console      serve the Integrations panel (acts with each person's own Kubernetes token)
  dev          start the embedded default: local control plane, KMS, controller, gateway and console
               (--kms vault-transit: seal with a Vault dev server's Transit engine)
  seal         seal credentials for Git through a server-side dry run
  connect      create a connection interactively (credentials never echoed)
  test         probe a connection now and print the outcome
  rotate       replace a credential
  status       list the connections of a workspace`;

const commands: Record<string, (args: ReturnType<typeof parseArgs>) => Promise<number>> = {
  controller: () => controllerCommand(),
  gateway: () => gatewayCommand(),
  agent: agentCommand,
  console: consoleCommand,
  dev,
  seal,
  connect,
  test: testConnection,
  rotate,
  status,
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const command = name ? commands[name] : undefined;
  if (!command) {
    process.stderr.write(`${USAGE}\n`);
    return name && name !== 'help' && name !== '--help' ? 64 : 0;
  }
  return command(parseArgs(rest));
}

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
