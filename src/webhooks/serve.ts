import { readFileSync } from 'node:fs';
import type { IntegrationType, Workspace } from '../api/v1alpha1/index.js';
import type { OperatorContext } from '../controllers/context.js';
import { oldestFirst } from '../domain/governing-workspace.js';
import type { KubeObject } from '../kube/client.js';
import { IntegrationTypes, Workspaces } from '../kube/resources.js';
import { KeyedTokenBucket } from '../runtime/keyed-token-bucket.js';
import type { Logger } from '../runtime/logger.js';
import type { AdmissionRequest, AdmissionResponse } from './admission.js';
import { ensureServingCertificate, readServingCertificate } from './certs.js';
import { registerWebhooks } from './registration.js';
import { sealConnection } from './sealing.js';
import { stampRebind, withPatch } from './connection-guards.js';
import { stampLastChange } from './change-stamp.js';
import { deleteProtectionDeps } from './delete-protection-deps.js';
import { startWebhookServer } from './server.js';
import { validateConnection, validateWorkspace, type ValidationDeps } from './validation.js';

const CERT_RELOAD_MS = 5 * 60_000;

export interface ServedWebhooks {
  port: number;
  close(): Promise<void>;
}

/**
 * Serves the admission webhooks (every replica does, so admission never
 * waits for a leader) with a self-managed or cert-manager certificate, and
 * declares the webhook configurations pointing at them.
 */
export async function serveWebhooks(ctx: OperatorContext, log: Logger): Promise<ServedWebhooks> {
  const { client, config } = ctx;
  const service = config.webhook.serviceName;
  const dnsNames = service
    ? [`${service}.${config.namespace}.svc`, `${service}.${config.namespace}.svc.cluster.local`]
    : ['localhost'];
  const certManaged = config.webhook.certs === 'cert-manager';
  const cert = certManaged
    ? await readServingCertificate(client, config.namespace)
    : await ensureServingCertificate(client, config.namespace, {
        dnsNames,
        ipAddresses: config.webhook.urlBase ? ['127.0.0.1'] : [],
      });
  const deps = validationDeps(ctx, log);
  const limiter = new KeyedTokenBucket(config.webhook.sealingRate);
  const server = await startWebhookServer({
    host: config.webhook.host,
    port: config.webhook.port,
    tls: cert,
    ...(config.webhook.clientCAFile
      ? { clientAuth: { caPem: readFileSync(config.webhook.clientCAFile, 'utf8'), names: config.webhook.clientNames } }
      : {}),
    log,
    handlers: {
      mutateConnection: logRefusals('seal', log, async (req) =>
        stampLastChange(
          req,
          withPatch(
            await sealConnection(req, {
              crypto: ctx.crypto,
              log,
              limiter,
              workspaceOf: async (ns) => oldestFirst(await deps.workspacesIn(ns))[0],
              integrationType: async (name) =>
                deps.integrationType(name) ??
                (await client.tryGet<IntegrationType & KubeObject>(IntegrationTypes, name)),
            }),
            stampRebind(req),
          ),
        ),
      ),
      validateConnection: logRefusals('validate-connection', log, (req) => validateConnection(req, deps)),
      validateWorkspace: logRefusals('validate-workspace', log, (req) => validateWorkspace(req, deps)),
    },
  });

  let reload: NodeJS.Timeout | undefined;
  if (certManaged) {
    // cert-manager's cainjector owns caBundle and the chart owns the configurations;
    // it renews the Secret in place, so pick the new certificate up without a restart.
    let served = cert.certPem;
    reload = setInterval(() => {
      void readServingCertificate(client, config.namespace, 0).then(
        (next) => {
          if (next.certPem === served) return;
          served = next.certPem;
          server.setCertificate(next);
          log.info('webhook serving certificate reloaded');
        },
        () => undefined,
      );
    }, CERT_RELOAD_MS);
    reload.unref();
  } else {
    const urlBase = config.webhook.urlBase?.replace(/:0$/, `:${server.port}`);
    await registerWebhooks(
      client,
      urlBase
        ? { caPem: cert.caPem, urlBase }
        : { caPem: cert.caPem, service: { namespace: config.namespace, name: service!, port: 443 } },
    );
  }
  return {
    port: server.port,
    async close() {
      clearInterval(reload);
      await server.close();
    },
  };
}

/**
 * Logs each refusal with its reason, so an operator can see why a tenant's
 * apply failed. Refusal messages name fields and fixes, never values (the
 * handlers' contract), and the request object itself is never logged.
 */
function logRefusals(
  webhook: string,
  log: Logger,
  handler: (req: AdmissionRequest) => Promise<AdmissionResponse>,
): (req: AdmissionRequest) => Promise<AdmissionResponse> {
  return async (req) => {
    const res = await handler(req);
    if (!res.allowed) {
      log.info(
        {
          webhook,
          operation: req.operation,
          kind: req.kind?.kind,
          namespace: req.namespace,
          name: req.name,
          dryRun: req.dryRun === true,
          code: res.status?.code,
          reason: res.status?.message,
        },
        'admission refused',
      );
    }
    return res;
  };
}

function validationDeps(ctx: OperatorContext, log: Logger): ValidationDeps {
  return {
    deletes: deleteProtectionDeps(ctx, log),
    workspacesIn: (ns) => liveWorkspaces(ctx, ns),
    integrationType: (name) => ctx.types.get(name),
    kmsProviders: ctx.crypto.envelope.providerNames(),
  };
}

/**
 * Workspaces of a namespace for admission: the cache, or the API server when
 * the cache has none yet (a Workspace and its connections applied together).
 */
async function liveWorkspaces(ctx: OperatorContext, ns: string): Promise<Workspace[]> {
  const cached = ctx.workspaces.list(ns).filter((w) => !w.metadata?.deletionTimestamp);
  if (cached.length > 0) return cached;
  const list = await ctx.client.list<Workspace & KubeObject>(Workspaces, { namespace: ns });
  return list.items.filter((w) => !w.metadata?.deletionTimestamp);
}
