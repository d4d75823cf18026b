import { describe, expect, it } from 'vitest';
import { TemplateError, refersToAbsentCredential, renderTemplate, renderUrlTemplate, templateReferences } from './templates.js';

const SECRET = 'sk-live-4f9a2b7c';
const values = {
  settings: { site: 'datadoghq.eu', port: 8443, tls: true, path: 'a b/c?d', nested: { x: 1 } },
  credentials: { apiKey: SECRET, empty: '' },
};

function thrown(fn: () => unknown): TemplateError {
  try {
    fn();
  } catch (err) {
    if (err instanceof TemplateError) return err;
    throw err;
  }
  throw new Error('expected a TemplateError');
}

describe('renderTemplate', () => {
  it('substitutes settings and credentials, with or without spaces', () => {
    expect(renderTemplate('https://api.{{settings.site}}:{{ settings.port }}/x', values)).toBe('https://api.datadoghq.eu:8443/x');
    expect(renderTemplate('Bearer {{credentials.apiKey}}', values)).toBe(`Bearer ${SECRET}`);
    expect(renderTemplate('{{settings.tls}}', values)).toBe('true');
    expect(renderTemplate('no placeholders', values)).toBe('no placeholders');
  });

  it('percent-encodes substituted values on request', () => {
    expect(renderTemplate('/p/{{settings.path}}', values, { urlEncode: true })).toBe('/p/a%20b%2Fc%3Fd');
  });

  it('names a missing setting', () => {
    const err = thrown(() => renderTemplate('{{settings.region}}', values));
    expect(err.kind).toBe('missing-setting');
    expect(err.field).toBe('settings.region');
    expect(err.message).toContain('settings.region');
  });

  it('names a missing credential without echoing any credential value', () => {
    const err = thrown(() => renderTemplate('{{credentials.apiKey}} {{credentials.empty}}', values));
    expect(err.kind).toBe('missing-credential');
    expect(err.field).toBe('credentials.empty');
    expect(err.message).not.toContain(SECRET);
  });

  it('refuses anything but settings/credentials references', () => {
    for (const tpl of ['{{env.HOME}}', '{{settings}}', '{{settings.a.b}}', '{{ credentials.apiKey | upper }}', '{{}}']) {
      expect(thrown(() => renderTemplate(tpl, values)).kind).toBe('unsupported-expression');
    }
    expect(thrown(() => renderTemplate('{{settings.nested}}', values)).kind).toBe('unsupported-value');
  });

  it('does not treat inherited properties as set', () => {
    expect(thrown(() => renderTemplate('{{settings.constructor}}', values)).kind).toBe('missing-setting');
  });
});

describe('templateReferences / refersToAbsentCredential', () => {
  it('lists references and detects absent optional credentials', () => {
    expect(templateReferences('{{settings.site}}-{{credentials.appKey}}')).toEqual(['settings.site', 'credentials.appKey']);
    expect(refersToAbsentCredential('{{credentials.appKey}}', values)).toBe(true);
    expect(refersToAbsentCredential('{{credentials.empty}}', values)).toBe(true);
    expect(refersToAbsentCredential('{{credentials.apiKey}}', values)).toBe(false);
  });
});

describe('renderUrlTemplate', () => {
  it('inserts host settings verbatim and encodes path/query settings', () => {
    const url = renderUrlTemplate('https://api.{{settings.site}}/v1/{{settings.path}}?q={{settings.path}}', values);
    expect(url.hostname).toBe('api.datadoghq.eu');
    expect(url.pathname).toBe('/v1/a%20b%2Fc%3Fd');
    expect(url.search).toBe('?q=a%20b%2Fc%3Fd');
  });

  it('accepts a whole base URL setting at the start', () => {
    const url = renderUrlTemplate('{{settings.base}}/status', { settings: { base: 'https://h.example:8443/api' }, credentials: {} });
    expect(url.href).toBe('https://h.example:8443/api/status');
  });

  it('refuses host values that would move the authority', () => {
    for (const site of ['evil.example@x', 'a.example/b', 'a b', 'x.example#']) {
      expect(thrown(() => renderUrlTemplate('https://api.{{settings.site}}/v1', { settings: { site }, credentials: {} })).field).toBe('settings.site');
    }
  });

  it('refuses non-http schemes and URLs with userinfo', () => {
    expect(() => renderUrlTemplate('{{settings.base}}', { settings: { base: 'file:///etc/passwd' }, credentials: {} })).toThrow(/http or https/);
    expect(() => renderUrlTemplate('https://u:p@{{settings.site}}/', values)).toThrow(/http or https/);
  });
});
