import { createHash, timingSafeEqual } from 'node:crypto';
import { MtPaasError } from '@mt-paas/context';

/** One API key for service-to-service or marketplace calls. */
export interface ApiKeyEntry {
  /** Names the caller in logs and audit events (`marketplace`, `billing`). */
  id: string;
  /** The secret key (at least 24 characters). */
  key: string;
  /** Roles the caller gets. @default [] */
  roles?: readonly string[];
}

/** Options of {@link createApiKeyVerifier}. */
export interface ApiKeyAuthOptions {
  keys: readonly ApiKeyEntry[];
  /** Header carrying the key. @default 'x-api-key' */
  header?: string;
}

/** Checks API keys. */
export interface ApiKeyVerifier {
  header: string;
  /** The matching entry or `undefined`; constant time with respect to the keys' contents. */
  match(presented: string): ApiKeyEntry | undefined;
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/**
 * Builds an API key verifier. Keys are compared as SHA-256 digests with `timingSafeEqual`, and every
 * configured key is compared on every call, so timing reveals neither the key nor which one matched.
 */
export function createApiKeyVerifier(options: ApiKeyAuthOptions): ApiKeyVerifier {
  for (const entry of options.keys) {
    if (entry.key.length < 24) {
      throw new MtPaasError(
        'CONFIG_INVALID',
        `API key "${entry.id}" is shorter than 24 characters; generate a longer one.`,
      );
    }
  }
  const digests = options.keys.map((entry) => ({ entry, digest: digest(entry.key) }));
  return {
    header: (options.header ?? 'x-api-key').toLowerCase(),
    match(presented) {
      const presentedDigest = digest(presented);
      let found: ApiKeyEntry | undefined;
      for (const candidate of digests) {
        if (timingSafeEqual(candidate.digest, presentedDigest) && found === undefined)
          found = candidate.entry;
      }
      return found;
    },
  };
}
