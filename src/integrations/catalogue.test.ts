/**
 * The built-in IntegrationType catalogue (config/types) as data: names,
 * categories and field names the spec fixes, settings schemas that compile and
 * accept realistic settings while refusing injection, templates that only name
 * declared fields, and, for every SaaS type, a probe run against the vendor's
 * documented contract (test/fixtures/saas) with right and wrong credentials.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { request } from 'node:https';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { parse, parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SAAS_CONTRACTS, startSaasFixture } from '../../test/fixtures/saas/index.js';
import type { Credentials, SaasContract, SaasFixture } from '../../test/fixtures/saas/index.js';
import type { IntegrationTypeObject, IntegrationTypeSpec, ProbeContext } from './probe-types.js';
import { runProbe } from './run-probe.js';
import { validateSettings } from './settings.js';
import { renderUrlTemplate } from './templates.js';

const TYPES_DIR = fileURLToPath(new URL('../../config/types/', import.meta.url));

interface CredentialField {
  name: string;
  displayName: string;
  required: boolean;
  description: string;
}
interface JsonSchema {
  type?: string;
  properties?: Record<string, JsonSchema>;
  [keyword: string]: unknown;
}
interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec: {
    displayName: string;
    category: string;
    description: string;
    documentationURL: string;
    settingsSchema: JsonSchema;
    credentialFields: CredentialField[];
    probe: { http?: Record<string, unknown> & { url: string; auth?: Record<string, string> }; driver?: string };
    gateway?: Record<string, unknown> & { baseURL: string; auth: Record<string, string> };
  };
}

function loadCatalogue(): Map<string, { file: string; manifest: Manifest; documents: number }> {
  const catalogue = new Map<string, { file: string; manifest: Manifest; documents: number }>();
  for (const file of readdirSync(TYPES_DIR)
    .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
    .sort()) {
    const text = readFileSync(`${TYPES_DIR}${file}`, 'utf8');
    const documents = parseAllDocuments(text);
    const manifest = parse(text) as Manifest;
    catalogue.set(manifest.metadata.name, {
      file,
      manifest,
      documents: Array.isArray(documents) ? documents.length : 0,
    });
  }
  return catalogue;
}

const CATALOGUE = loadCatalogue();
const manifestOf = (name: string): Manifest => {
  const entry = CATALOGUE.get(name);
  if (entry === undefined) throw new Error(`no built-in IntegrationType ${name}`);
  return entry.manifest;
};

const EXPECTED_CATEGORIES: Record<string, string> = {
  datadog: 'monitoring',
  prometheus: 'monitoring',
  grafana: 'monitoring',
  pagerduty: 'monitoring',
  sentry: 'monitoring',
  segment: 'analytics',
  mixpanel: 'analytics',
  posthog: 'analytics',
  amplitude: 'analytics',
  postgresql: 'database',
  mysql: 'database',
  redis: 'database',
  s3: 'storage',
  'http-api': 'api',
  'gcp-service-account': 'other',
};

/** spec.md section 2: field names that must not drift, so manifests stay portable. */
const SPEC_TABLE: Record<string, { settings: string[]; credentials: string[] }> = {
  'http-api': {
    settings: ['baseURL', 'auth', 'headerName', 'queryParam'],
    credentials: ['token', 'username', 'password', 'clientCertificate', 'clientKey'],
  },
  postgresql: {
    settings: ['host', 'port', 'database', 'user', 'sslmode'],
    credentials: ['password', 'clientCertificate', 'clientKey'],
  },
  mysql: { settings: ['host', 'port', 'database', 'user', 'tls'], credentials: ['password'] },
  redis: { settings: ['host', 'port', 'username', 'tls'], credentials: ['password'] },
  s3: { settings: ['endpoint', 'region', 'bucket', 'forcePathStyle'], credentials: ['accessKeyId', 'secretAccessKey'] },
  datadog: { settings: ['site'], credentials: ['apiKey', 'appKey'] },
  prometheus: { settings: ['url'], credentials: ['username', 'password', 'token'] },
};

const DRIVER_TYPES: Record<string, string> = {
  postgresql: 'postgresql',
  mysql: 'mysql',
  redis: 'redis',
  s3: 's3',
  prometheus: 'prometheus',
  'gcp-service-account': 'gcp-service-account',
};

/** Realistic settings per type, as a tenant would write them; each must pass its schema. */
const EXAMPLE_SETTINGS: Record<string, Record<string, unknown>> = {
  datadog: { site: 'datadoghq.eu' },
  prometheus: { url: 'https://mimir.acme.example/prometheus', auth: 'basic' },
  grafana: { url: 'https://acme.grafana.net' },
  pagerduty: {},
  sentry: { organization: 'acme-corp' },
  segment: { host: 'eu1.api.segmentapis.com' },
  mixpanel: { host: 'eu.mixpanel.com', projectId: 12345 },
  posthog: { host: 'https://posthog.acme.example' },
  amplitude: { host: 'analytics.eu.amplitude.com' },
  postgresql: { host: 'orders-db.acme.svc.cluster.local', user: 'orders', database: 'orders' },
  mysql: { host: '10.20.0.7', port: 3307, user: 'billing', database: 'billing', tls: false },
  redis: { host: 'cache.acme.example', username: 'worker' },
  s3: {
    endpoint: 'https://minio.acme.example:9000',
    region: 'us-east-1',
    bucket: 'acme-exports',
    forcePathStyle: true,
  },
  'http-api': { baseURL: 'https://api.acme.example/v2', auth: 'header', headerName: 'X-Api-Token', probePath: '/me' },
  'gcp-service-account': { scope: 'https://www.googleapis.com/auth/devstorage.read_only' },
};

/** Settings that would move a request to another host, or smuggle one in, or are just wrong. */
const REJECTED_SETTINGS: Array<[string, Record<string, unknown>]> = [
  ['datadog', { site: 'evil.example' }],
  ['datadog', { site: 'datadoghq.com.evil.example' }],
  ['sentry', { host: 'sentry.io/evil', organization: 'acme' }],
  ['sentry', { organization: '../../admin' }],
  ['sentry', {}],
  ['grafana', { url: 'https://user@evil.example' }],
  ['grafana', { url: 'https://acme.grafana.net/' }],
  ['grafana', { url: 'ftp://acme.grafana.net' }],
  ['posthog', { host: 'javascript:alert(1)' }],
  ['segment', { host: 'api.segmentapis.com.evil.example' }],
  ['mixpanel', { host: 'api.mixpanel.com' }],
  ['amplitude', { host: 'analytics.amplitude.com' }],
  ['prometheus', { url: 'https://prom.example', auth: 'digest' }],
  ['postgresql', { host: 'db', user: 'u', port: 70000 }],
  ['postgresql', { host: 'db', user: 'u', sslmode: 'verify-none' }],
  ['mysql', { host: 'db' }],
  ['redis', { host: 'bad host' }],
  ['s3', { bucket: 'Not_A_Bucket' }],
  ['s3', { bucket: 'acme', endpoint: 'https://minio.example/path' }],
  ['http-api', { baseURL: 'https://api.example', auth: 'oauth' }],
  ['http-api', { baseURL: 'https://api.example', probePath: 'no-leading-slash' }],
  ['http-api', { baseURL: 'https://api.example', headerName: 'Bad Header' }],
];

const HOSTNAME =
  /^(?=.{1,253}\.?$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[-0-9a-z]{0,61}[0-9a-z])?)*\.?$/i;

function createAjv(): Ajv2020 {
  const ajv = new Ajv2020({ strict: true, allErrors: true, useDefaults: true });
  ajv.addFormat('hostname', HOSTNAME);
  ajv.addFormat('uri', (value: string) => /^[a-z][a-z0-9+.-]*:\S+$/i.test(value) && URL.canParse(value));
  return ajv;
}

/** Strict ajv with the two formats the catalogue uses: a schema must not lean on ajv's leniency. */
const strictAjv = createAjv();

function manifestObject(name: string): IntegrationTypeObject {
  return { metadata: { name }, spec: manifestOf(name).spec as unknown as IntegrationTypeSpec };
}

/** Validates with the same code admission uses; returns the settings with schema defaults applied. */
function withDefaults(name: string, settings: Record<string, unknown>): Record<string, unknown> {
  const result = validateSettings(manifestObject(name), settings);
  if (!result.ok) throw new Error(`${name} settings invalid: ${result.errors.map((e) => e.message).join('; ')}`);
  return result.settings;
}

function accepts(name: string, settings: Record<string, unknown>): boolean {
  return validateSettings(manifestObject(name), settings).ok;
}

const TEMPLATE = /\{\{\s*([^}]*?)\s*\}\}/g;
const FIELD_REFERENCE = /^(settings|credentials)\.([A-Za-z][A-Za-z0-9_]*)$/;

function stringsIn(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(stringsIn);
  if (value !== null && typeof value === 'object') return Object.values(value).flatMap(stringsIn);
  return [];
}

function templateReferences(value: unknown): Array<{ raw: string; kind?: string; name?: string }> {
  return stringsIn(value).flatMap((s) =>
    [...s.matchAll(TEMPLATE)].map((m) => {
      const ref = FIELD_REFERENCE.exec(m[1] ?? '');
      return { raw: m[0], kind: ref?.[1], name: ref?.[2] };
    }),
  );
}

describe('built-in IntegrationType catalogue', () => {
  it('holds one IntegrationType per file, named after the file', () => {
    for (const [name, { file, manifest, documents }] of CATALOGUE) {
      expect(documents, file).toBe(1);
      expect(manifest.apiVersion, file).toBe('atoll.dev/v1alpha1');
      expect(manifest.kind, file).toBe('IntegrationType');
      expect(file).toBe(`${name}.yaml`);
    }
  });

  it('ships every expected type in its category', () => {
    for (const [name, category] of Object.entries(EXPECTED_CATEGORIES)) {
      expect(manifestOf(name).spec.category, name).toBe(category);
    }
    for (const { manifest } of CATALOGUE.values()) {
      expect(['monitoring', 'analytics', 'database', 'storage', 'messaging', 'api', 'other']).toContain(
        manifest.spec.category,
      );
    }
  });

  it('lists every manifest, and nothing else, in kustomization.yaml', () => {
    const kustomization = parse(readFileSync(`${TYPES_DIR}kustomization.yaml`, 'utf8')) as { resources: string[] };
    const files = [...CATALOGUE.values()].map((entry) => entry.file);
    expect([...kustomization.resources].sort()).toEqual([...files].sort());
  });

  it('uses the setting and credential names of the spec table', () => {
    for (const [name, { settings, credentials }] of Object.entries(SPEC_TABLE)) {
      const spec = manifestOf(name).spec;
      expect(Object.keys(spec.settingsSchema.properties ?? {}), name).toEqual(expect.arrayContaining(settings));
      expect(
        spec.credentialFields.map((f) => f.name),
        name,
      ).toEqual(credentials);
    }
  });

  it('describes every type and every credential field for the people filling them in', () => {
    for (const [name, { manifest }] of CATALOGUE) {
      const { spec } = manifest;
      expect(spec.displayName, name).toMatch(/\S/);
      expect(spec.description.length, name).toBeGreaterThan(30);
      expect(URL.canParse(spec.documentationURL), name).toBe(true);
      expect(spec.credentialFields.length, name).toBeGreaterThan(0);
      for (const field of spec.credentialFields) {
        expect(field.name, name).toMatch(/^[a-z][A-Za-z0-9]*$/);
        expect(field.displayName, `${name}.${field.name}`).toMatch(/\S/);
        expect(typeof field.required, `${name}.${field.name}`).toBe('boolean');
        expect(field.description.length, `${name}.${field.name}`).toBeGreaterThan(20);
      }
      expect(new Set(spec.credentialFields.map((f) => f.name)).size, name).toBe(spec.credentialFields.length);
    }
  });

  it('compiles every settings schema with ajv (strict), closed to unknown settings', () => {
    for (const [name, { manifest }] of CATALOGUE) {
      expect(manifest.spec.settingsSchema.type, name).toBe('object');
      expect(manifest.spec.settingsSchema.additionalProperties, name).toBe(false);
      expect(() => strictAjv.compile(manifest.spec.settingsSchema), name).not.toThrow();
    }
  });

  it('accepts the example settings of every type, and refuses them with an unknown setting added', () => {
    expect(Object.keys(EXAMPLE_SETTINGS).sort()).toEqual([...CATALOGUE.keys()].sort());
    for (const [name, settings] of Object.entries(EXAMPLE_SETTINGS)) {
      expect(validateSettings(manifestObject(name), settings).errors, name).toEqual([]);
      expect(accepts(name, { ...settings, unexpectedSetting: 'x' }), name).toBe(false);
    }
  });

  it('fills in defaults so that the usual case needs few settings', () => {
    expect(withDefaults('datadog', {})).toEqual({ site: 'datadoghq.com' });
    expect(withDefaults('sentry', { organization: 'acme' })).toEqual({ host: 'sentry.io', organization: 'acme' });
    expect(withDefaults('postgresql', { host: 'db', user: 'app' })).toEqual({
      host: 'db',
      user: 'app',
      port: 5432,
      database: 'postgres',
      sslmode: 'verify-full',
    });
    expect(withDefaults('redis', { host: 'cache' })).toEqual({ host: 'cache', port: 6379, tls: true });
    expect(withDefaults('s3', { bucket: 'acme-exports' })).toEqual({
      bucket: 'acme-exports',
      region: 'us-east-1',
      forcePathStyle: false,
    });
    expect(withDefaults('http-api', { baseURL: 'https://api.example' })).toEqual({
      baseURL: 'https://api.example',
      auth: 'bearer',
      headerName: 'X-API-Key',
      queryParam: 'api_key',
      probePath: '/',
    });
  });

  it.each(REJECTED_SETTINGS)('refuses %s settings %j', (name, settings) => {
    expect(accepts(name, settings)).toBe(false);
  });

  it('declares exactly one probe: a driver for protocol types, declarative HTTP otherwise', () => {
    for (const [name, { manifest }] of CATALOGUE) {
      const { probe } = manifest.spec;
      expect(Number(probe.http !== undefined) + Number(probe.driver !== undefined), name).toBe(1);
      if (name in DRIVER_TYPES) expect(probe.driver, name).toBe(DRIVER_TYPES[name]);
      else expect(probe.http?.url, name).toBeTypeOf('string');
    }
  });

  it('tells refused credentials (401/403) from success in every HTTP probe', () => {
    for (const [name, { manifest }] of CATALOGUE) {
      const http = manifest.spec.probe.http;
      if (http === undefined) continue;
      expect(['GET', 'HEAD', 'POST'], name).toContain(http.method);
      expect(http.successStatuses, name).toEqual(expect.arrayContaining([200]));
      expect(http.authFailureStatuses, name).toEqual([401, 403]);
    }
  });

  it('tells the gateway how to inject credentials for every HTTP type', () => {
    for (const [name, { manifest }] of CATALOGUE) {
      const { probe, gateway } = manifest.spec;
      const isHttp = probe.http !== undefined || name === 'prometheus';
      if (isHttp) {
        expect(gateway?.baseURL, name).toBeTypeOf('string');
        expect(gateway?.auth.type, name).toBeTypeOf('string');
      } else {
        expect(gateway, `${name} is not HTTP and must not be proxied`).toBeUndefined();
      }
    }
  });

  it('only templates declared settings and credentials, in {{settings.x}} / {{credentials.x}} form', () => {
    for (const [name, { manifest }] of CATALOGUE) {
      const settingNames = Object.keys(manifest.spec.settingsSchema.properties ?? {});
      const credentialNames = manifest.spec.credentialFields.map((f) => f.name);
      for (const ref of templateReferences([manifest.spec.probe, manifest.spec.gateway])) {
        expect(ref.kind, `${name}: ${ref.raw}`).toBeDefined();
        expect(ref.kind === 'settings' ? settingNames : credentialNames, `${name}: ${ref.raw}`).toContain(ref.name);
      }
      for (const auth of [manifest.spec.probe.http?.auth, manifest.spec.gateway?.auth]) {
        for (const key of ['credential', 'usernameField', 'passwordField'] as const) {
          const field = auth?.[key];
          if (field !== undefined && !field.includes('{{')) expect(credentialNames, `${name}.${key}`).toContain(field);
        }
      }
    }
  });

  it('resolves every setting an HTTP template names once defaults are applied', () => {
    for (const [name, { manifest }] of CATALOGUE) {
      const settings = withDefaults(name, EXAMPLE_SETTINGS[name] ?? {});
      for (const ref of templateReferences([manifest.spec.probe, manifest.spec.gateway])) {
        if (ref.kind === 'settings') expect(settings, `${name}: ${ref.raw}`).toHaveProperty(ref.name ?? '');
      }
    }
  });

  it.each([
    ['datadog', 'https://api.datadoghq.eu/api/v1/validate'],
    ['grafana', 'https://acme.grafana.net/api/org'],
    ['pagerduty', 'https://api.pagerduty.com/abilities'],
    ['sentry', 'https://sentry.io/api/0/organizations/acme-corp/'],
    ['segment', 'https://eu1.api.segmentapis.com/'],
    ['mixpanel', 'https://eu.mixpanel.com/api/app/me'],
    ['posthog', 'https://posthog.acme.example/api/users/@me/'],
    ['amplitude', 'https://analytics.eu.amplitude.com/api/2/events/list'],
    ['http-api', 'https://api.acme.example/v2/me'],
  ])('%s: the probe URL renders from the example settings to %s', (name, expected) => {
    const url = manifestOf(name).spec.probe.http?.url ?? '';
    const settings = withDefaults(name, EXAMPLE_SETTINGS[name] ?? {});
    expect(renderUrlTemplate(url, { settings, credentials: {} }).href).toBe(expected);
  });

  it('builds hosts only from settings the schema pins to a host name, an enum, or a whole URL', () => {
    for (const [name, { manifest }] of CATALOGUE) {
      const properties = manifest.spec.settingsSchema.properties ?? {};
      for (const url of [manifest.spec.probe.http?.url, manifest.spec.gateway?.baseURL]) {
        if (url === undefined) continue;
        const inHost = /^https:\/\/[^/]*\{\{settings\.(\w+)\}\}/.exec(url)?.[1];
        if (inHost !== undefined) {
          const schema = properties[inHost] ?? {};
          expect(schema.enum !== undefined || schema.format === 'hostname', `${name}: ${url}`).toBe(true);
        } else if (url.startsWith('{{')) {
          const whole = /^\{\{settings\.(\w+)\}\}/.exec(url)?.[1] ?? '';
          expect(properties[whole]?.format, `${name}: ${url}`).toBe('uri');
          expect(properties[whole]?.pattern, `${name}: ${url}`).toBeTypeOf('string');
        } else {
          expect(url, name).toMatch(/^https:\/\/[a-z0-9.-]+(\/|$)/);
        }
      }
    }
  });
});

/** The header values a credential may travel as: raw, and inside HTTP basic. */
function credentialForms(credentials: Credentials): string[] {
  const values = Object.values(credentials);
  const pairs = values.flatMap((a) => values.map((b) => Buffer.from(`${a}:${b}`).toString('base64')));
  return [...values, ...pairs];
}

function fixtureGet(
  fixture: SaasFixture,
  contract: SaasContract,
  headers: Record<string, string>,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: fixture.port,
        servername: contract.host,
        ca: fixture.caPem,
        method: contract.method,
        path: contract.path,
        headers: { host: contract.host, ...headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('SaaS contract fixture', () => {
  let fixture: SaasFixture;
  beforeAll(async () => {
    fixture = await startSaasFixture();
  });
  afterAll(async () => {
    await fixture.close();
  });

  it('has a contract for every declarative HTTP type except the generic http-api', () => {
    const httpTypes = [...CATALOGUE.entries()]
      .filter(([, e]) => e.manifest.spec.probe.http !== undefined)
      .map(([n]) => n);
    expect(SAAS_CONTRACTS.map((c) => c.type).sort()).toEqual(httpTypes.filter((n) => n !== 'http-api').sort());
  });

  it.each(SAAS_CONTRACTS.map((c) => [c.type, c] as const))(
    '%s: serves TLS for the vendor host and answers only the documented credential header',
    async (_type, contract) => {
      const documented = { ...contract.credentialHeaders(contract.credentials), ...contract.requiredHeaders };
      const ok = await fixtureGet(fixture, contract, documented);
      expect(ok.status).toBe(contract.success.status);
      expect(JSON.parse(ok.body)).toEqual(contract.success.body);

      const wrong = await fixtureGet(fixture, contract, {
        ...contract.credentialHeaders(contract.wrongCredentials),
        ...contract.requiredHeaders,
      });
      expect(wrong.status).toBe(contract.refused.status);

      const anonymous = await fixtureGet(fixture, contract, contract.requiredHeaders);
      expect(anonymous.status).toBe(contract.refused.status);
    },
  );
});

describe('SaaS probes against the vendor contracts', () => {
  let fixture: SaasFixture;
  beforeAll(async () => {
    fixture = await startSaasFixture();
  });
  afterAll(async () => {
    await fixture.close();
  });

  function context(contract: SaasContract, credentials: Credentials): ProbeContext {
    return {
      settings: withDefaults(contract.type, contract.settings),
      credentials,
      timeoutMs: 5_000,
      egress: { allowCIDRs: ['127.0.0.1/32'] },
      maxResponseBytes: 64 * 1024,
      trustedCAs: [fixture.caPem],
      dial: (host, port) => fixture.dial(host, port),
    };
  }

  async function probe(contract: SaasContract, credentials: Credentials) {
    const before = fixture.requests.length;
    const outcome = await runProbe(manifestObject(contract.type), context(contract, credentials));
    return { outcome, received: fixture.requests.slice(before) };
  }

  function expectDocumentedRequest(
    contract: SaasContract,
    credentials: Credentials,
    received: ReturnType<SaasFixture['requestsFor']>,
  ): void {
    expect(received).toHaveLength(1);
    const [req] = received;
    if (req === undefined) return;
    expect(req.type).toBe(contract.type);
    expect(req.servername).toBe(contract.host);
    expect(req.host).toBe(contract.host);
    expect(req.method).toBe(contract.method);
    expect(req.url).toBe(contract.path);
    const documented = { ...contract.credentialHeaders(credentials), ...contract.requiredHeaders };
    for (const [header, value] of Object.entries(documented)) {
      expect(req.headers[header], header).toBe(value);
      expect(
        req.rawHeaderNames.filter((n) => n.toLowerCase() === header),
        header,
      ).toHaveLength(1);
    }
    // The credential travels in the documented header(s) only: not in the URL, not anywhere else.
    const secrets = credentialForms(credentials);
    const elsewhere = Object.entries(req.headers).filter(([header]) => !(header in documented));
    for (const secret of secrets) {
      expect(req.url).not.toContain(secret);
      for (const [header, value] of elsewhere) expect(String(value), header).not.toContain(secret);
    }
  }

  function expectNoCredentialIn(message: string, contract: SaasContract): void {
    for (const secret of [...credentialForms(contract.credentials), ...credentialForms(contract.wrongCredentials)]) {
      expect(message).not.toContain(secret);
    }
  }

  it.each(SAAS_CONTRACTS.map((c) => [c.type, c] as const))(
    '%s: the accepted credential succeeds',
    async (_type, contract) => {
      const { outcome, received } = await probe(contract, contract.credentials);
      expect(outcome).toMatchObject({ reachable: 'True', authenticated: 'True', reason: 'Succeeded' });
      expectDocumentedRequest(contract, contract.credentials, received);
      expectNoCredentialIn(outcome.message, contract);
    },
  );

  it.each(SAAS_CONTRACTS.map((c) => [c.type, c] as const))(
    '%s: a refused credential is AuthenticationFailed, sent exactly as documented',
    async (_type, contract) => {
      const { outcome, received } = await probe(contract, contract.wrongCredentials);
      expect(outcome).toMatchObject({ reachable: 'True', authenticated: 'False', reason: 'AuthenticationFailed' });
      expect(outcome.message).toContain(String(contract.refused.status));
      expectDocumentedRequest(contract, contract.wrongCredentials, received);
      expectNoCredentialIn(outcome.message, contract);
    },
  );
});
