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

// `scheme://user:password@host` — works on URL templates too (`…/tenant_{tenant_id}`).
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*:)([^@/?#\s]+)(@)/gi;

function maskUrls(text: string): string {
  return text.replace(URL_PASSWORD, `$1${REDACTED}$3`);
}

function isSecretKey(key: string, parentKey: string | undefined): boolean {
  // `security.encryption.key`
  if (key === 'key' && parentKey === 'encryption') return true;
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
  if (typeof value === 'string') return maskUrls(value);
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
 * (`hf_token`, `githubToken`, `webhook_signing_key`) — become `"[redacted]"`, and passwords inside URLs
 * (`postgresql://app:[redacted]@db/…`) are masked. Works on the typed config and on raw YAML
 * trees alike; the input is not modified.
 */
export function redact<T>(config: T): T {
  return redactValue(config, undefined, undefined) as T;
}
