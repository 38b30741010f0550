import { isPlainObject } from './merge.js';

/** What a masked secret is replaced with. */
export const REDACTED = '[redacted]';

// Keys whose values are secrets, in either spelling (the YAML's snake_case or the typed camelCase).
const SECRET_KEY =
  /^(?:api_?key|secret|secrets|legacy_?secret|client_?secret|password|passwd|token|access_?token|refresh_?token|private_?key|credentials?)$/i;
const SECRET_WORDS = /secret|password|passwd|api_?key|private_?key|access_?token|credential/i;
// `scheme://user:password@host` — works on URL templates too (`…/tenant_{tenant_id}`).
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*:)([^@/?#\s]+)(@)/gi;

function maskUrls(text: string): string {
  return text.replace(URL_PASSWORD, `$1${REDACTED}$3`);
}

function isSecretKey(key: string, parentKey: string | undefined): boolean {
  if (SECRET_KEY.test(key) || SECRET_WORDS.test(key)) return true;
  // `security.encryption.key`
  return key === 'key' && parentKey === 'encryption';
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
 * secret, the encryption key, vector-store and LRS credentials — and any key in `custom` whose
 * name says secret/password/token/api key — become `"[redacted]"`, and passwords inside URLs
 * (`postgresql://app:[redacted]@db/…`) are masked. Works on the typed config and on raw YAML
 * trees alike; the input is not modified.
 */
export function redact<T>(config: T): T {
  return redactValue(config, undefined, undefined) as T;
}
