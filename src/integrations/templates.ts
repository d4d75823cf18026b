/**
 * IntegrationType templates: `{{settings.<name>}}` and `{{credentials.<name>}}`
 * and nothing else, so a type manifest can say where values go but can never
 * compute, branch or reach anything else. Errors name the field, never a value.
 */

export interface TemplateValues {
  settings: Record<string, unknown>;
  credentials: Record<string, string>;
}

export interface RenderOptions {
  /** Percent-encode every substituted value (URL path and query parts). */
  urlEncode?: boolean;
}

export type TemplateErrorKind = 'missing-setting' | 'missing-credential' | 'unsupported-expression' | 'unsupported-value';

export const ERROR_MISSING_SETTING = 'template refers to a setting that is not set';
export const ERROR_MISSING_CREDENTIAL = 'template refers to a credential that is not set';
export const ERROR_UNSUPPORTED_EXPRESSION = 'template expression is not {{settings.<name>}} or {{credentials.<name>}}';
export const ERROR_UNSUPPORTED_VALUE = 'template setting is not a string, number or boolean';
export const ERROR_INVALID_URL = 'probe URL is not a valid http or https URL';
export const ERROR_URL_HOST_VALUE = 'setting inserted into the URL origin contains characters not allowed there';

/** A template could not be rendered; `field` names what was missing (a name, never a value). */
export class TemplateError extends Error {
  readonly kind: TemplateErrorKind;
  /** e.g. "settings.site" or "credentials.appKey". */
  readonly field: string;

  constructor(kind: TemplateErrorKind, field: string, message: string) {
    super(`${message}: ${field}`);
    this.name = 'TemplateError';
    this.kind = kind;
    this.field = field;
  }
}

const EXPRESSION = /\{\{(.*?)\}\}/g;
const REFERENCE = /^\s*(settings|credentials)\.([A-Za-z_][A-Za-z0-9_-]*)\s*$/;

interface Reference {
  source: 'settings' | 'credentials';
  name: string;
}

function parseReference(expression: string): Reference {
  const match = REFERENCE.exec(expression);
  if (match === null) throw new TemplateError('unsupported-expression', `{{${expression.trim()}}}`, ERROR_UNSUPPORTED_EXPRESSION);
  return { source: match[1] as Reference['source'], name: match[2] as string };
}

function lookup(ref: Reference, values: TemplateValues): string {
  if (ref.source === 'credentials') {
    const value = Object.hasOwn(values.credentials, ref.name) ? values.credentials[ref.name] : undefined;
    if (value === undefined || value === '') {
      throw new TemplateError('missing-credential', `credentials.${ref.name}`, ERROR_MISSING_CREDENTIAL);
    }
    return value;
  }
  const value = Object.hasOwn(values.settings, ref.name) ? values.settings[ref.name] : undefined;
  if (value === undefined || value === null) {
    throw new TemplateError('missing-setting', `settings.${ref.name}`, ERROR_MISSING_SETTING);
  }
  if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
    throw new TemplateError('unsupported-value', `settings.${ref.name}`, ERROR_UNSUPPORTED_VALUE);
  }
  return String(value);
}

/** Renders a template. A string without `{{` renders to itself. */
export function renderTemplate(tpl: string, values: TemplateValues, opts: RenderOptions = {}): string {
  return tpl.replace(EXPRESSION, (_whole, expression: string) => {
    const value = lookup(parseReference(expression), values);
    return opts.urlEncode === true ? encodeURIComponent(value) : value;
  });
}

/** The fields a template refers to, e.g. ["credentials.appKey"]; for dropping headers whose optional credential is absent. */
export function templateReferences(tpl: string): string[] {
  return [...tpl.matchAll(EXPRESSION)].map((m) => {
    const ref = parseReference(m[1] ?? '');
    return `${ref.source}.${ref.name}`;
  });
}

/** True when the template names a credential that is not set (so an optional header should be dropped). */
export function refersToAbsentCredential(tpl: string, values: TemplateValues): boolean {
  return templateReferences(tpl).some((field) => {
    if (!field.startsWith('credentials.')) return false;
    const value = values.credentials[field.slice('credentials.'.length)];
    return value === undefined || value === '';
  });
}

/** Characters a value placed into scheme://host:port must not carry (they would move the authority). */
const ORIGIN_FORBIDDEN = /[\s@\\?#\u0000-\u001f\u007f]/;

/**
 * Renders a URL template. Values substituted into the origin (scheme, host,
 * port; or a whole base URL placed at the start) are inserted verbatim and
 * must already satisfy the type's schema; values after the origin (path,
 * query, fragment) are percent-encoded. The result must be an absolute
 * http(s) URL without userinfo.
 */
export function renderUrlTemplate(tpl: string, values: TemplateValues): URL {
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(tpl)?.[0] ?? '';
  let originEnd = tpl.length;
  // The origin ends at the first literal '/', '?' or '#' after the scheme, outside any {{...}}.
  const withoutExpressions = tpl.replace(EXPRESSION, (whole) => ' '.repeat(whole.length));
  for (let i = scheme.length; i < withoutExpressions.length; i++) {
    if ('/?#'.includes(withoutExpressions[i] ?? '')) {
      originEnd = i;
      break;
    }
  }
  const origin = tpl.slice(0, originEnd).replace(EXPRESSION, (_whole, expression: string) => {
    const ref = parseReference(expression);
    const value = lookup(ref, values);
    const atStart = tpl.startsWith(`{{${expression}}}`);
    // A whole base URL may carry a path; anything inside the authority may not carry separators.
    const forbidden = atStart ? ORIGIN_FORBIDDEN : /[\s@\\/?#\u0000-\u001f\u007f]/;
    if (forbidden.test(value)) throw new TemplateError('unsupported-value', `${ref.source}.${ref.name}`, ERROR_URL_HOST_VALUE);
    return value;
  });
  const rest = renderTemplate(tpl.slice(originEnd), values, { urlEncode: true });
  let url: URL;
  try {
    url = new URL(origin + rest);
  } catch (err) {
    throw new Error(ERROR_INVALID_URL, { cause: err });
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username !== '' || url.password !== '') {
    throw new Error(ERROR_INVALID_URL);
  }
  return url;
}
