import { describe, expect, it } from 'vitest';
import {
  TemplateError,
  refersToAbsentCredential,
  renderTemplate,
  renderUrlTemplate,
  templateReferences,
} from './templates.js';

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
    expect(renderTemplate('https://api.{{settings.site}}:{{ settings.port }}/x', values)).toBe(
      'https://api.datadoghq.eu:8443/x',
    );
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
    for (const tpl of [
      '{{env.HOME}}',
      '{{settings}}',
      '{{settings.a.b}}',
      '{{ credentials.apiKey | upper }}',
      '{{}}',
    ]) {
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
    expect(templateReferences('{{settings.site}}-{{credentials.appKey}}')).toEqual([
      'settings.site',
      'credentials.appKey',
    ]);
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
    const url = renderUrlTemplate('{{settings.base}}/status', {
      settings: { base: 'https://h.example:8443/api' },
      credentials: {},
    });
    expect(url.href).toBe('https://h.example:8443/api/status');
  });

  it('refuses host values that would move the authority', () => {
    for (const site of ['evil.example@x', 'a.example/b', 'a b', 'x.example#']) {
      expect(
        thrown(() => renderUrlTemplate('https://api.{{settings.site}}/v1', { settings: { site }, credentials: {} }))
          .field,
      ).toBe('settings.site');
    }
  });

  it('refuses non-http schemes and URLs with userinfo', () => {
    expect(() =>
      renderUrlTemplate('{{settings.base}}', { settings: { base: 'file:///etc/passwd' }, credentials: {} }),
    ).toThrow(/http or https/);
    expect(() => renderUrlTemplate('https://u:p@{{settings.site}}/', values)).toThrow(/http or https/);
  });

  describe('after a whole-URL setting', () => {
    const api = (probePath: unknown, baseURL = 'https://api.acme.example/v2') => ({
      settings: { baseURL, probePath },
      credentials: {},
    });
    const PROBE = '{{settings.baseURL}}{{settings.probePath}}';

    it('takes origin and base path from the setting and keeps / in a path-like setting', () => {
      expect(renderUrlTemplate(PROBE, api('/me')).href).toBe('https://api.acme.example/v2/me');
      expect(renderUrlTemplate(PROBE, api('/users/self/profile')).pathname).toBe('/v2/users/self/profile');
      expect(renderUrlTemplate(PROBE, api('/', 'https://api.acme.example')).href).toBe('https://api.acme.example/');
      expect(renderUrlTemplate(PROBE, api('/health', 'http://127.0.0.1:8080')).href).toBe(
        'http://127.0.0.1:8080/health',
      );
    });

    it('percent-encodes each segment of a path-like setting and keeps its query a query', () => {
      const url = renderUrlTemplate(PROBE, api('/a b/ü/x%2Fy?q=1 2&r=#frag'));
      expect(url.pathname).toBe('/v2/a%20b/%C3%BC/x%2Fy');
      expect(url.search).toBe('?q=1%202&r=%23frag');
      expect(url.hash).toBe('');
      expect(url.searchParams.get('q')).toBe('1 2');
    });

    it('drops a trailing slash of the base before a path, so segments do not double', () => {
      expect(renderUrlTemplate(PROBE, api('/me', 'https://api.acme.example/v2/')).href).toBe(
        'https://api.acme.example/v2/me',
      );
    });

    it('keeps a path prefix when the template is the setting alone (gateway baseURL)', () => {
      const url = renderUrlTemplate('{{settings.url}}', {
        settings: { url: 'https://grafana.example.com/grafana' },
        credentials: {},
      });
      expect(url.href).toBe('https://grafana.example.com/grafana');
      expect(url.pathname).toBe('/grafana');
      expect(
        renderUrlTemplate('{{settings.url}}/api/org', {
          settings: { url: 'https://grafana.example.com/grafana' },
          credentials: {},
        }).href,
      ).toBe('https://grafana.example.com/grafana/api/org');
    });

    it('refuses a following setting that would extend the host instead of starting a path', () => {
      for (const probePath of ['.evil.example/me', '@evil.example/', ':8443/me', 'me']) {
        const err = thrown(() => renderUrlTemplate(PROBE, api(probePath, 'https://api.acme.example')));
        expect(err.field).toBe('settings.probePath');
      }
      expect(() =>
        renderUrlTemplate('{{settings.baseURL}}.evil.example/me', api('/me', 'https://api.acme.example')),
      ).toThrow(/http or https/);
    });

    it('refuses dot segments that would climb above the base path', () => {
      for (const probePath of ['/../admin', '/a/./b', '/%2e%2E/admin', '/..']) {
        const err = thrown(() => renderUrlTemplate(PROBE, api(probePath)));
        expect(err.field).toBe('settings.probePath');
        expect(err.message).toContain('segment');
      }
      expect(
        thrown(() =>
          renderUrlTemplate('https://h.example/v1/{{settings.path}}', { settings: { path: '..' }, credentials: {} }),
        ).field,
      ).toBe('settings.path');
    });

    it('refuses a whole URL carrying userinfo, query or fragment', () => {
      for (const baseURL of [
        'https://user:pw@api.acme.example',
        'https://api.acme.example?x=1',
        'https://api.acme.example#f',
        'https://api.acme.example\\@evil.example',
      ]) {
        expect(thrown(() => renderUrlTemplate(PROBE, api('/me', baseURL))).field).toBe('settings.baseURL');
      }
    });

    it('names the field of a value that is not valid Unicode', () => {
      const err = thrown(() => renderUrlTemplate(PROBE, api('/a\uD800')));
      expect(err.field).toBe('settings.probePath');
    });
  });
});
