import { isPlainObject } from './merge.js';

/** What a masked secret is replaced with. */
export const REDACTED = '[redacted]';

// A key names a secret when one of its words (snake_case, kebab-case or camelCase) is one of these…
const SECRET_WORDS = new Set([
  'secret',
  'secrets',
  'password',
  'passwords',
  'passwd',
  'passphrase',
  'token',
  'tokens',
  'credential',
  'credentials',
  'apikey',
]);
// …or two neighbouring words are one of these pairs (`api_key`, `privateKey`, `webhook_signing_key`).
const SECRET_PAIRS = new Set(['api key', 'private key', 'signing key', 'access key', 'secret key']);
// Counted things, not secrets: `max_tokens`, `llm_tokens` (a quota meter), `tokens_per_minute`.
const COUNT_WORDS = new Set(['max', 'min', 'llm', 'per', 'limit', 'count', 'total']);

/** `openaiApiKey` / `openai_api_key` / `openai-api-key` → `['openai', 'api', 'key']`. */
function wordsOf(key: string): string[] {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .split(/[\s_.-]+/)
    .filter((word) => word !== '')
    .map((word) => word.toLowerCase());
}

/** Query parameter and conninfo keywords that carry a secret (`password`, `sslpassword`, `access_token` …). */
function isSecretParameter(name: string): boolean {
  let decoded = name;
  try {
    decoded = decodeURIComponent(name.replace(/\+/g, ' '));
  } catch {
    // keep the raw name
  }
  if (isSecretKey(decoded, undefined)) return true;
  // `max_tokens=`, `tokens_per_minute=` are counts.
  if (/(?:max|min|llm|limit|count|total)[-_]?tokens?|tokens?[-_]?(?:per|limit|count|total)/i.test(decoded))
    return false;
  return /pass|pwd|secret|token|credential|signature|apikey|api[-_]?key/i.test(decoded);
}

/** The start of a URL (`postgresql://`, `mongodb+srv://`, the `postgresql://` of a `jdbc:postgresql://`). */
const URL_START = /[a-z][a-z0-9+.-]*:\/\//gi;
/** A host (name, IPv4, `[IPv6]`, libpq's comma-separated hosts) with optional ports. */
const HOST_LIKE = /^[a-z0-9._~%!$&'()*+,;=:[\]-]*$/i;

/**
 * Masks the credentials of one URL, reading it by RFC 3986 rather than by a pattern over the whole
 * string: the authority's userinfo ends at its LAST `@` (so a password holding `@`, `:`, `/`, `?` or `#`
 * is masked whole), the password is the userinfo after its first `:`, and the query's `password=` /
 * `token=` … values are masked too (also inside a nested URL). The rest is kept byte for byte, so URL
 * templates (`…/tenant_{tenant_id}`) stay readable.
 */
function maskUrl(url: string): string {
  const authorityStart = url.indexOf('://') + 3;
  // The userinfo delimiter is the last `@` that is followed by a host: hosts never hold an `@`.
  let at = -1;
  for (let index = url.lastIndexOf('@'); index >= authorityStart; index = url.lastIndexOf('@', index - 1)) {
    const rest = url.slice(index + 1);
    const hostEnd = rest.search(/[/?#]|$/);
    // A nested URL (`?next=postgres://u:p@db`) is not this URL's userinfo; its own turn comes with the query.
    if (HOST_LIKE.test(rest.slice(0, hostEnd)) && !url.slice(authorityStart, index).includes('://')) {
      at = index;
      break;
    }
    if (index === 0) break;
  }
  let head = url.slice(0, authorityStart);
  let rest = url.slice(authorityStart);
  if (at !== -1) {
    const userinfo = url.slice(authorityStart, at);
    const colon = userinfo.indexOf(':');
    head += colon === -1 ? userinfo : `${userinfo.slice(0, colon + 1)}${REDACTED}`;
    rest = url.slice(at);
  }
  // Path, query, fragment: secrets in `?password=…` and in `#access_token=…`.
  const queryStart = rest.search(/[?#]/);
  if (queryStart === -1) return head + rest;
  let tail = rest.slice(0, queryStart);
  for (const part of rest.slice(queryStart).split(/([?#&;])/)) {
    const equals = part.indexOf('=');
    if (equals > 0 && isSecretParameter(part.slice(0, equals)) && part.length > equals + 1) {
      tail += `${part.slice(0, equals + 1)}${REDACTED}`;
    } else if (part.includes('://')) {
      tail += maskText(part);
    } else {
      tail += part;
    }
  }
  return head + tail;
}

/**
 * libpq keyword/value connection strings (`host=db password='s e c' dbname=app`): the values of secret
 * keywords, quoted or not, are masked.
 */
function maskConninfo(text: string): string {
  return text.replace(
    /(^|[\s,;{(])([A-Za-z_][A-Za-z0-9_.-]*)(\s*=\s*)('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^\s,;&)}]+)/g,
    (whole, before: string, key: string, equals: string) =>
      isSecretParameter(key) ? `${before}${key}${equals}${REDACTED}` : whole,
  );
}

/** Masks every URL's credentials, then secret keyword values outside URLs. */
function maskText(text: string): string {
  let result = '';
  let last = 0;
  for (const match of text.matchAll(URL_START)) {
    if (match.index < last) continue; // a URL inside the previous one's query: handled by maskUrl
    // A URL runs to the next whitespace or quote (the end of the token it is written in).
    const end = text.slice(match.index).search(/[\s"'<>]|$/) + match.index;
    result += maskConninfo(text.slice(last, match.index)) + maskUrl(text.slice(match.index, end));
    last = end;
  }
  return result + maskConninfo(text.slice(last));
}

function isSecretKey(key: string, parentKey: string | undefined): boolean {
  // `security.encryption.key` and its retired keys (`previous_keys` / `previousKeys`)
  if (parentKey === 'encryption' && (key === 'key' || /^previous[_-]?keys$/i.test(key))) return true;
  const words = wordsOf(key);
  if (words.some((word) => word === 'tokens') && words.some((word) => COUNT_WORDS.has(word))) return false;
  if (words.some((word) => SECRET_WORDS.has(word))) return true;
  return words.some((word, index) => index > 0 && SECRET_PAIRS.has(`${words[index - 1]} ${word}`));
}

function redactValue(value: unknown, key: string | undefined, parentKey: string | undefined): unknown {
  if (key !== undefined && isSecretKey(key, parentKey)) {
    if (typeof value === 'string') return value === '' ? value : REDACTED;
    if (Array.isArray(value)) return value.map((item) => (typeof item === 'string' ? REDACTED : item));
  }
  if (typeof value === 'string') return maskText(value);
  if (Array.isArray(value)) return value.map((item) => redactValue(item, undefined, key));
  if (isPlainObject(value)) {
    const result: Record<string, unknown> = {};
    for (const [childKey, child] of Object.entries(value))
      result[childKey] = redactValue(child, childKey, key);
    return result;
  }
  return value;
}

/**
 * A copy of `config` safe to print or log: the marketplace API key, webhook secrets, the JWT
 * secret, the encryption key, vector-store and LRS credentials — and any key in `custom` with a
 * word secret, password, token or credential in its name, or api/private/signing/access key
 * (`hf_token`, `githubToken`, `webhook_signing_key`) — become `"[redacted]"`; inside any string, URL
 * passwords (`postgresql://app:[redacted]@db/…`, also when they hold `@`, `:`, `/`, `?` or `#`),
 * secret query parameters (`?password=[redacted]`, `&sslpassword=`, `#access_token=`) and secret
 * keywords of libpq connection strings (`password='[redacted]'`) are masked. Works on the typed config and on raw YAML
 * trees alike; the input is not modified.
 */
export function redact<T>(config: T): T {
  return redactValue(config, undefined, undefined) as T;
}
