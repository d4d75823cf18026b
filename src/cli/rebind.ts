import type { ExternalConnection } from '../api/v1alpha1/index.js';
import { REBIND_REQUESTED_ANNOTATION } from '../api/v1alpha1/index.js';
import type { KubeObject } from '../kube/client.js';
import { ExternalConnections } from '../kube/resources.js';
import { flag, UsageError, type ParsedArgs } from './args.js';
import { cliClient } from './kube-context.js';
import { parseDuration } from '../domain/duration.js';
import { REBIND_CANNOT_CONFIRM } from '../domain/credentials-state.js';

type Conn = ExternalConnection & KubeObject;

export const REBIND_USAGE = 'atoll rebind <connection> [-n namespace] [--timeout 60s]';

/**
 * `atoll rebind <connection>`: confirms that a connection's credentials may
 * follow its changed destination (an IntegrationType edit, reason
 * DestinationChanged). Sets a new `atoll.dev/rebind-requested` value; the
 * webhook records who set it and the operator re-seals for the new
 * destination, naming that user in an Event. Waits for the outcome.
 */
export async function rebind(args: ParsedArgs): Promise<number> {
  const name = args.positional[0];
  if (!name) throw new UsageError(REBIND_USAGE);
  const timeoutMs = parseDuration(flag(args, 'timeout'), 60_000);
  if (!(timeoutMs > 0)) throw new UsageError('--timeout must be a duration such as 30s or 2m');
  const { client, namespace } = cliClient(args);
  const before = await client.get<Conn>(ExternalConnections, name, namespace);
  const sealed = before.status?.conditions?.find((c) => c.type === 'CredentialsSealed');
  if (sealed?.reason !== 'DestinationChanged') {
    process.stdout.write(
      `${namespace}/${name}: nothing to confirm (CredentialsSealed=${sealed?.status ?? 'Unknown'} ${sealed?.reason ?? ''}); rebind is for reason DestinationChanged\n`,
    );
    return 0;
  }
  if (sealed.message?.includes(REBIND_CANNOT_CONFIRM)) {
    // The connection's own settings moved: only supplying the credential again helps (ADR 0013).
    process.stderr.write(`${namespace}/${name}: ${sealed.message}\n`);
    return 1;
  }
  process.stdout.write(
    `${namespace}/${name}: ${sealed.message}\nconfirming: its credentials will be sent to the new destination\n`,
  );
  const requestedAt = new Date().toISOString();
  await client.mergePatch(ExternalConnections, name, namespace, {
    metadata: { annotations: { [REBIND_REQUESTED_ANNOTATION]: requestedAt } },
  });
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const conn = await client.get<Conn>(ExternalConnections, name, namespace);
    const c = conn.status?.conditions?.find((x) => x.type === 'CredentialsSealed');
    if (
      c &&
      c.reason !== 'DestinationChanged' &&
      Date.parse(c.lastTransitionTime ?? '') >= Date.parse(requestedAt) - 1000
    ) {
      process.stdout.write(`${namespace}/${name}: CredentialsSealed=${c.status} ${c.reason}: ${c.message}\n`);
      const fields = Object.entries(conn.status?.credentials ?? {})
        .filter(([, s]) => s.sealed)
        .map(([f]) => f);
      if (fields.length)
        process.stdout.write(
          `if Git holds this connection, commit status.credentials.<field>.sealed for: ${fields.join(', ')}\n`,
        );
      return c.status === 'True' ? 0 : 1;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  process.stderr.write(`no outcome for ${namespace}/${name} within the timeout; is the atoll controller running?\n`);
  return 2;
}
