import { KUBECONFIG_FLAG, NAMESPACE_FLAG, type CommandSpec, type FlagSpec } from './args.js';

/**
 * Every subcommand's flags, in one table: `atoll <command> --help` is
 * generated from it and the parser accepts exactly these flags.
 */
const SET_FLAG: FlagSpec = {
  name: 'set',
  value: 'key=value',
  multiple: true,
  description: "a setting of the IntegrationType's settingsSchema, e.g. --set host=db.internal",
};
const TYPE_FLAG: FlagSpec = {
  name: 'type',
  value: 'type',
  description: 'the IntegrationType (kubectl get integrationtypes lists them)',
};

export const COMMANDS = {
  controller: {
    name: 'controller',
    summary: 'Run the operator (reconcilers, admission webhooks) in a cluster.',
    details: 'Configured by environment variables (ATOLL_KMS_PROVIDER, ATOLL_LOG_LEVEL, ...); see docs/install.md.',
    flags: [],
  },
  gateway: {
    name: 'gateway',
    summary: 'Run the credential-injecting HTTP gateway in a cluster.',
    details:
      'Configured by environment variables (ATOLL_GATEWAY_PORT, ATOLL_GATEWAY_TLS_CERT_FILE, ATOLL_GATEWAY_TLS_KEY_FILE, ...); see docs/install.md.',
    flags: [],
  },
  agent: {
    name: 'agent',
    summary:
      "Keep connections' credentials in files, <dir>/<connection>/<field> (a sidecar; see docs/using-connections.md).",
    details:
      'Every flag can also come from the environment: ATOLL_GATEWAY_URL, ATOLL_CONNECTIONS (comma-separated),\nATOLL_CREDENTIALS_DIR, ATOLL_TOKEN_FILE, ATOLL_GATEWAY_CA_FILE, ATOLL_AGENT_ONCE=true,\nATOLL_GATEWAY_INSECURE_PLAINTEXT=true.',
    flags: [
      {
        name: 'gateway',
        value: 'url',
        description: "the gateway's URL, e.g. https://atoll-gateway.atoll-system.svc:8443",
      },
      { name: 'connection', value: 'name', multiple: true, description: "a connection in the pod's namespace" },
      {
        name: 'dir',
        value: 'dir',
        description: 'where the files go; mount a memory-backed emptyDir here (default /var/run/atoll/credentials)',
      },
      {
        name: 'token-file',
        value: 'file',
        description: 'projected ServiceAccount token, audience atoll-gateway (default /var/run/secrets/atoll/token)',
      },
      { name: 'ca-file', value: 'file', description: "PEM bundle that verifies the gateway's certificate" },
      {
        name: 'once',
        description: 'write the files once and exit 0 (Jobs, init containers) instead of keeping them current',
      },
      {
        name: 'insecure-plaintext',
        description:
          'allow an http:// gateway URL (the token then crosses the network in clear; only for a mesh that encrypts pod traffic)',
      },
    ],
  },
  console: {
    name: 'console',
    summary: "Serve the Integrations panel (acts with each person's own Kubernetes token).",
    details:
      'Every flag can also come from the environment: ATOLL_CONSOLE_API_SERVER, ATOLL_CONSOLE_CA_FILE,\nATOLL_CONSOLE_TLS_CERT_FILE, ATOLL_CONSOLE_TLS_KEY_FILE, ATOLL_CONSOLE_PORT, ATOLL_CONSOLE_HOST,\nATOLL_CONSOLE_MAX_SESSIONS.',
    flags: [
      { name: 'api-server', value: 'url', description: 'the Kubernetes API server (default: in-cluster)' },
      {
        name: 'ca-file',
        value: 'file',
        description: 'PEM CA that verifies the API server (default: the in-cluster CA)',
      },
      {
        name: 'tls-cert-file',
        value: 'file',
        description: 'serving certificate (PEM); with --tls-key-file the console serves HTTPS',
      },
      { name: 'tls-key-file', value: 'file', description: 'serving key (PEM)' },
      { name: 'host', value: 'address', description: 'listen address (default 127.0.0.1)' },
      { name: 'port', value: 'port', description: 'listen port (default 8090)' },
      {
        name: 'max-sessions',
        value: 'n',
        description: 'sessions kept in memory at most (default 10000; each person keeps at most 16)',
      },
    ],
  },
  dev: {
    name: 'dev',
    summary: 'Start the embedded default on this machine: a local control plane, KMS, controller, gateway and console.',
    details: 'Refuses to start over a running instance using the same --dir.',
    flags: [
      { name: 'dir', value: 'dir', description: 'state directory (default .atoll/dev in the package); wiped at start' },
      {
        name: 'kms',
        value: 'provider',
        description:
          "local (default) or vault-transit (a Vault dev server's Transit engine; needs hack/build-vault.sh)",
      },
    ],
  },
  seal: {
    name: 'seal',
    positionals: '<connection>',
    summary: 'Print an ExternalConnection manifest with sealed credentials, for Git (the recommended GitOps path).',
    details:
      'Reads each credential from a no-echo prompt (or stdin when piped, for a single --field), asks the API\nserver to seal it (a server-side dry run: nothing is stored and no KMS access is needed here) and\nprints the manifest without server-set metadata, so `kubectl apply` (client- or server-side) can\napply it again and again.',
    flags: [
      TYPE_FLAG,
      {
        name: 'field',
        value: 'name',
        multiple: true,
        description: "a credential field to seal (default: the type's required fields)",
      },
      SET_FLAG,
      { name: 'display-name', value: 'text', description: 'spec.displayName' },
      NAMESPACE_FLAG,
      KUBECONFIG_FLAG,
    ],
  },
  connect: {
    name: 'connect',
    positionals: '<connection>',
    summary:
      'Create a connection interactively: prompts for missing required settings and each credential (never echoed).',
    details:
      'With stdin not a terminal, give every required setting with --set; stdin then carries the one required credential.',
    flags: [TYPE_FLAG, SET_FLAG, NAMESPACE_FLAG, KUBECONFIG_FLAG],
  },
  test: {
    name: 'test',
    positionals: '<connection>',
    summary: 'Probe a connection now and print the outcome (exit 0 when Ready).',
    flags: [
      {
        name: 'timeout',
        value: 'duration',
        description: 'how long to wait for the probe, e.g. 30s or 2m (default 60s)',
      },
      NAMESPACE_FLAG,
      KUBECONFIG_FLAG,
    ],
  },
  rotate: {
    name: 'rotate',
    positionals: '<connection>',
    summary: 'Replace credentials (read from a no-echo prompt, or stdin for a single --field); sealed at admission.',
    details:
      'If Git manages the connection (Argo CD, Flux, or another field manager), prints the sealed manifest to commit:\notherwise the next sync restores the old credential.',
    flags: [
      { name: 'field', value: 'name', multiple: true, description: 'a credential field to replace' },
      NAMESPACE_FLAG,
      KUBECONFIG_FLAG,
    ],
  },
  rebind: {
    name: 'rebind',
    positionals: '<connection>',
    summary:
      'Confirm that credentials may follow a changed destination (reason DestinationChanged); the operator re-seals them.',
    details:
      'Sets atoll.dev/rebind-requested; admission records who confirmed and the operator names that user in an Event.\nWaits for the outcome.',
    flags: [
      { name: 'timeout', value: 'duration', description: 'how long to wait for the operator (default 60s)' },
      NAMESPACE_FLAG,
      KUBECONFIG_FLAG,
    ],
  },
  status: {
    name: 'status',
    summary: "List a workspace's connections with their conditions (exit 1 when the namespace has no Workspace).",
    flags: [NAMESPACE_FLAG, KUBECONFIG_FLAG],
  },
} satisfies Record<string, CommandSpec>;

export type CommandName = keyof typeof COMMANDS;
