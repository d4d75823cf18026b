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

export type TemplateErrorKind =
  'missing-setting' | 'missing-credential' | 'unsupported-expression' | 'unsupported-value';

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

  constructor(kind: TemplateErrorKind, field: string, message: string, options?: ErrorOptions) {
    super(`${message}: ${field}`, options);
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
  if (match === null)
    throw new TemplateError('unsupported-expression', `{{${expression.trim()}}}`, ERROR_UNSUPPORTED_EXPRESSION);
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
/** What a value placed inside the authority (next to literal host text) must not carry. */
const AUTHORITY_FORBIDDEN = /[\s@\\/?#\u0000-\u001f\u007f]/;
/** A whole-URL setting: its value is an absolute http(s) URL. */
const WHOLE_URL = /^https?:\/\//i;
/** A path segment the URL parser would resolve (`%2e` counts as `.`). */
const DOT_SEGMENT = /^(?:\.|%2e){1,2}$/i;
/** Path segment characters kept as written (RFC 3986 pchar), plus existing %XX escapes. */
const PATH_SAFE = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})$/;
/** Query characters kept as written, so `a=1&b=2` keeps its structure. */
const QUERY_SAFE = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})$/;

export const ERROR_URL_PATH_START = 'setting appended to a whole base URL must start with /';
export const ERROR_URL_DOT_SEGMENT = 'setting inserted into the URL path contains a . or .. segment';
export const ERROR_URL_ENCODING = 'setting inserted into the URL is not valid Unicode';

function fieldOf(ref: Reference): string {
  return `${ref.source}.${ref.name}`;
}

/** encodeURIComponent, but a lone surrogate becomes a TemplateError naming the field instead of a URIError. */
function encodeComponent(value: string, field: string): string {
  try {
    return encodeURIComponent(value);
  } catch (err) {
    throw new TemplateError('unsupported-value', field, ERROR_URL_ENCODING, { cause: err });
  }
}

/** Percent-encodes every character (code point) of `value` that `safe` does not keep; valid %XX escapes stay as they are. */
function encodeExcept(value: string, safe: RegExp, field: string): string {
  return value.replace(/%[0-9A-Fa-f]{2}|[\s\S]/gu, (token) =>
    safe.test(token) ? token : encodeComponent(token, field),
  );
}

/**
 * Encodes a path-like value (one starting with `/`, such as a probe path):
 * `/` separators are kept, each segment is percent-encoded, and an optional
 * `?query` stays a query. Dot segments are refused so the value cannot climb
 * above a base URL's path prefix.
 */
function encodePathValue(value: string, field: string): { text: string; hasQuery: boolean } {
  const queryAt = value.indexOf('?');
  const path = queryAt === -1 ? value : value.slice(0, queryAt);
  const segments = path.split('/').map((segment) => {
    if (DOT_SEGMENT.test(segment)) throw new TemplateError('unsupported-value', field, ERROR_URL_DOT_SEGMENT);
    return encodeExcept(segment, PATH_SAFE, field);
  });
  const query = queryAt === -1 ? '' : `?${encodeExcept(value.slice(queryAt + 1), QUERY_SAFE, field)}`;
  return { text: segments.join('/') + query, hasQuery: queryAt !== -1 };
}

/**
 * Renders what follows the origin (or a whole base URL): literals verbatim,
 * values percent-encoded. A value starting with `/` placed in the path keeps
 * its `/` separators; any other value is one encoded component. After a whole
 * base URL the result must start with `/`, `?` or `#`, so it cannot extend the host.
 */
function renderUrlTail(tail: string, values: TemplateValues, afterWholeUrl: boolean): string {
  let out = '';
  let inPath = true;
  let last = 0;
  for (const match of tail.matchAll(EXPRESSION)) {
    const literal = tail.slice(last, match.index);
    if (/[?#]/.test(literal)) inPath = false;
    out += literal;
    const ref = parseReference(match[1] ?? '');
    const field = fieldOf(ref);
    const value = lookup(ref, values);
    if (afterWholeUrl && out === '' && !value.startsWith('/')) {
      throw new TemplateError('unsupported-value', field, ERROR_URL_PATH_START);
    }
    if (inPath && value.startsWith('/')) {
      const encoded = encodePathValue(value, field);
      out += encoded.text;
      if (encoded.hasQuery) inPath = false;
    } else {
      if (inPath && DOT_SEGMENT.test(value)) throw new TemplateError('unsupported-value', field, ERROR_URL_DOT_SEGMENT);
      out += encodeComponent(value, field);
    }
    last = match.index + match[0].length;
  }
  out += tail.slice(last);
  if (afterWholeUrl && out !== '' && !'/?#'.includes(out[0] ?? '')) throw new Error(ERROR_INVALID_URL);
  return out;
}

/**
 * When the template starts with a whole-URL setting, its value supplies the
 * origin and base path: returns that prefix (trailing slashes dropped when a
 * path follows) and the template text after the setting. Otherwise undefined.
 */
function wholeUrlBase(tpl: string, values: TemplateValues): { prefix: string; tail: string } | undefined {
  const leading = /^\{\{(.*?)\}\}/.exec(tpl);
  if (leading === null) return undefined;
  const ref = parseReference(leading[1] ?? '');
  const value = lookup(ref, values);
  if (!WHOLE_URL.test(value)) return undefined;
  if (ORIGIN_FORBIDDEN.test(value)) throw new TemplateError('unsupported-value', fieldOf(ref), ERROR_URL_HOST_VALUE);
  let base: URL;
  try {
    base = new URL(value);
  } catch (err) {
    throw new Error(ERROR_INVALID_URL, { cause: err });
  }
  const tail = tpl.slice(leading[0].length);
  const path = /^\{\{|^\//.test(tail) ? base.pathname.replace(/\/+$/, '') : base.pathname;
  return { prefix: base.origin + path, tail };
}

/**
 * Renders a URL template. A template starting with a whole-URL setting (an
 * absolute http(s) URL, e.g. `{{settings.baseURL}}{{settings.probePath}}`)
 * takes origin and base path from that value and keeps the path prefix.
 * Otherwise values substituted into the origin (scheme, host, port) are
 * inserted verbatim, must not carry authority separators, and must already
 * satisfy the type's schema. Values after the origin (path, query, fragment)
 * are percent-encoded; a value starting with `/` in the path keeps its `/`
 * separators. The result must be an absolute http(s) URL without userinfo.
 */
export function renderUrlTemplate(tpl: string, values: TemplateValues): URL {
  const whole = wholeUrlBase(tpl, values);
  let head: string;
  let tail: string;
  if (whole !== undefined) {
    head = whole.prefix;
    tail = whole.tail;
  } else {
    const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(tpl)?.[0] ?? '';
    let originEnd = tpl.length;
    // The origin ends at the first literal '/', '?' or '#' after the scheme, outside any {{...}}.
    const withoutExpressions = tpl.replace(EXPRESSION, (expression) => ' '.repeat(expression.length));
    for (let i = scheme.length; i < withoutExpressions.length; i++) {
      if ('/?#'.includes(withoutExpressions[i] ?? '')) {
        originEnd = i;
        break;
      }
    }
    head = tpl.slice(0, originEnd).replace(EXPRESSION, (_expression, expression: string) => {
      const ref = parseReference(expression);
      const value = lookup(ref, values);
      // Only a leading value may carry '/' (e.g. file:///x, refused below as not http(s)).
      const forbidden = tpl.startsWith(`{{${expression}}}`) ? ORIGIN_FORBIDDEN : AUTHORITY_FORBIDDEN;
      if (forbidden.test(value)) throw new TemplateError('unsupported-value', fieldOf(ref), ERROR_URL_HOST_VALUE);
      return value;
    });
    tail = tpl.slice(originEnd);
  }
  const rest = renderUrlTail(tail, values, whole !== undefined);
  let url: URL;
  try {
    url = new URL(head + rest);
  } catch (err) {
    throw new Error(ERROR_INVALID_URL, { cause: err });
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username !== '' || url.password !== '') {
    throw new Error(ERROR_INVALID_URL);
  }
  return url;
}
