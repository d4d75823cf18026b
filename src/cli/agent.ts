import { runAgent } from '../gateway/agent.js';
import { createLogger } from '../runtime/logger.js';
import { flag, flags, hasFlag, UsageError, type ParsedArgs } from './args.js';

/** `atoll agent`: writes granted connections' credentials to an in-memory volume, kept current (or once). */
export async function agentCommand(args: ParsedArgs): Promise<number> {
  const gatewayURL = flag(args, 'gateway') ?? process.env.ATOLL_GATEWAY_URL;
  const connections = [
    ...flags(args, 'connection'),
    ...(process.env.ATOLL_CONNECTIONS?.split(',').filter(Boolean) ?? []),
  ];
  const dir = flag(args, 'dir') ?? process.env.ATOLL_CREDENTIALS_DIR ?? '/var/run/atoll/credentials';
  const tokenFile = flag(args, 'token-file') ?? process.env.ATOLL_TOKEN_FILE ?? '/var/run/secrets/atoll/token';
  if (!gatewayURL)
    throw new UsageError('atoll agent: --gateway <url> (or ATOLL_GATEWAY_URL) is required; see atoll agent --help');
  if (connections.length === 0)
    throw new UsageError('atoll agent: name at least one --connection (or ATOLL_CONNECTIONS); see atoll agent --help');
  const once = hasFlag(args, 'once') || process.env.ATOLL_AGENT_ONCE === 'true';
  const log = createLogger({ name: 'atoll-agent' }).child({ component: 'agent' });
  const controller = new AbortController();
  process.once('SIGTERM', () => controller.abort());
  process.once('SIGINT', () => controller.abort());
  const caFile = flag(args, 'ca-file') ?? process.env.ATOLL_GATEWAY_CA_FILE;
  log.info({ gateway: gatewayURL, connections, dir, tokenFile, once }, 'agent started');
  const insecurePlaintext =
    (flag(args, 'insecure-plaintext') ?? process.env.ATOLL_GATEWAY_INSECURE_PLAINTEXT) === 'true';
  await runAgent({
    gatewayURL,
    tokenFile,
    connections,
    dir,
    log,
    signal: controller.signal,
    once,
    ...(caFile ? { caFile } : {}),
    ...(insecurePlaintext ? { insecurePlaintext } : {}),
  });
  return 0;
}
