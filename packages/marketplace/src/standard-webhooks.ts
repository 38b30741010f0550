import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { MtPaasError } from '@mt-paas/context';

/** The three headers of a Standard Webhooks delivery. */
export interface WebhookHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
}

/** What a verified delivery says about itself. */
export interface VerifiedWebhook {
  /** `webhook-id`: the delivery's idempotency key (the same on every retry). */
  id: string;
  /** `webhook-timestamp` as a date (seconds precision). */
  timestamp: Date;
}

/** Options of {@link verifyWebhook}. */
export interface VerifyWebhookOptions {
  /** Lower-case header names, as Node gives them. */
  headers: Readonly<Record<string, string | readonly string[] | undefined>>;
  /** The raw body bytes exactly as received (never a re-serialised JSON object). */
  body: Uint8Array | string;
  /** `whsec_…` secrets; a signature made with any of them is accepted (rotation). */
  secrets: readonly string[];
  /** Accepted distance between `webhook-timestamp` and now, both ways. @default 300 */
  toleranceSeconds?: number;
  /** The clock. @default () => new Date() */
  now?: () => Date;
}

const SECRET_PREFIX = 'whsec_';
const MIN_SECRET_BYTES = 16;
const MAX_ID_LENGTH = 256;

/**
 * Decodes a `whsec_<base64>` secret. @throws MtPaasError `CONFIG_INVALID` when it is not one.
 */
export function decodeWebhookSecret(secret: string): Buffer {
  if (typeof secret !== 'string' || !secret.startsWith(SECRET_PREFIX)) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      'A webhook signing secret must look like "whsec_<base64>" (Standard Webhooks); generate one with generateWebhookSecret().',
    );
  }
  const encoded = secret.slice(SECRET_PREFIX.length);
  const bytes = Buffer.from(encoded, 'base64');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded) || bytes.length < MIN_SECRET_BYTES) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      `A webhook signing secret must be "whsec_" followed by at least ${MIN_SECRET_BYTES} base64-encoded random bytes (24 to 64 recommended).`,
    );
  }
  return bytes;
}

/** A new random `whsec_` secret (32 bytes). */
export function generateWebhookSecret(): string {
  return `${SECRET_PREFIX}${randomBytes(32).toString('base64')}`;
}

function toBytes(body: Uint8Array | string): Buffer {
  return typeof body === 'string'
    ? Buffer.from(body, 'utf8')
    : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}

function hmac(key: Buffer, id: string, timestampSeconds: number, body: Buffer): Buffer {
  return createHmac('sha256', key).update(`${id}.${timestampSeconds}.`, 'utf8').update(body).digest();
}

/**
 * Signs a delivery the Standard Webhooks way: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, one
 * signature per secret (space-separated), so a receiver holding any of them accepts it.
 */
export function signWebhook(options: {
  id: string;
  timestamp: Date;
  body: Uint8Array | string;
  secrets: readonly string[];
}): WebhookHeaders {
  if (options.secrets.length === 0) {
    throw new MtPaasError('CONFIG_INVALID', 'signWebhook needs at least one "whsec_" secret.');
  }
  const seconds = Math.floor(options.timestamp.getTime() / 1000);
  const body = toBytes(options.body);
  const signatures = options.secrets.map(
    (secret) => `v1,${hmac(decodeWebhookSecret(secret), options.id, seconds, body).toString('base64')}`,
  );
  return {
    'webhook-id': options.id,
    'webhook-timestamp': String(seconds),
    'webhook-signature': signatures.join(' '),
  };
}

function single(headers: VerifyWebhookOptions['headers'], name: string): string | undefined {
  const value = headers[name];
  if (value === undefined) return undefined;
  if (typeof value === 'string') return value;
  return value.length === 1 ? value[0] : undefined;
}

function refuse(message: string, reason: string): MtPaasError {
  return new MtPaasError('WEBHOOK_SIGNATURE_INVALID', message, { details: { reason } });
}

/** True when the request carries any Standard Webhooks header (then it must verify). */
export function hasWebhookSignature(headers: VerifyWebhookOptions['headers']): boolean {
  return (
    headers['webhook-signature'] !== undefined ||
    headers['webhook-id'] !== undefined ||
    headers['webhook-timestamp'] !== undefined
  );
}

/**
 * Verifies a Standard Webhooks delivery over the raw body bytes: the timestamp within the tolerance
 * (both ways), then a `v1` signature made with one of the secrets, compared in constant time.
 *
 * @throws MtPaasError `WEBHOOK_SIGNATURE_INVALID` (401) saying what is wrong (`details.reason`:
 * `missing_headers`, `bad_timestamp`, `stale_timestamp`, `future_timestamp`, `bad_signature`).
 */
export function verifyWebhook(options: VerifyWebhookOptions): VerifiedWebhook {
  const keys = options.secrets.map(decodeWebhookSecret);
  if (keys.length === 0) {
    throw refuse(
      'This service has no webhook signing secret configured; set marketplace.webhooks.secrets.',
      'no_secret',
    );
  }
  const id = single(options.headers, 'webhook-id');
  const timestampText = single(options.headers, 'webhook-timestamp');
  const signatureText = single(options.headers, 'webhook-signature');
  if (id === undefined || timestampText === undefined || signatureText === undefined) {
    throw refuse(
      'Send exactly one each of the webhook-id, webhook-timestamp and webhook-signature headers (Standard Webhooks).',
      'missing_headers',
    );
  }
  if (id.length === 0 || id.length > MAX_ID_LENGTH || !/^[\x21-\x7e]+$/.test(id)) {
    throw refuse(`webhook-id must be 1 to ${MAX_ID_LENGTH} visible ASCII characters.`, 'bad_id');
  }
  if (!/^\d{1,12}$/.test(timestampText)) {
    throw refuse('webhook-timestamp must be whole seconds since the Unix epoch.', 'bad_timestamp');
  }
  const seconds = Number(timestampText);
  const tolerance = options.toleranceSeconds ?? 300;
  const nowSeconds = Math.floor((options.now?.() ?? new Date()).getTime() / 1000);
  if (nowSeconds - seconds > tolerance) {
    throw refuse(
      `The delivery is older than ${tolerance} s (webhook-timestamp ${seconds}); send a fresh delivery with a new timestamp and signature.`,
      'stale_timestamp',
    );
  }
  if (seconds - nowSeconds > tolerance) {
    throw refuse(
      `webhook-timestamp ${seconds} is more than ${tolerance} s in the future; check the sender's clock.`,
      'future_timestamp',
    );
  }
  const body = toBytes(options.body);
  const expected = keys.map((key) => hmac(key, id, seconds, body));
  let matched = false;
  for (const part of signatureText.split(' ')) {
    const comma = part.indexOf(',');
    if (comma === -1 || part.slice(0, comma) !== 'v1') continue;
    const encoded = part.slice(comma + 1);
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) continue;
    const given = Buffer.from(encoded, 'base64');
    for (const candidate of expected) {
      // Every candidate is compared (no early exit on the secret that matched).
      if (given.length === candidate.length && timingSafeEqual(given, candidate)) matched = true;
    }
  }
  if (!matched) {
    throw refuse(
      'No v1 signature in webhook-signature matches the body with a configured secret; sign "id.timestamp.body" over the exact bytes sent.',
      'bad_signature',
    );
  }
  return { id, timestamp: new Date(seconds * 1000) };
}

/** Constant-time comparison of two secrets (different lengths compare unequal without leaking where). */
export function secretsEqual(given: string, expected: string): boolean {
  const a = createHmac('sha256', 'mt-paas-compare').update(given, 'utf8').digest();
  const b = createHmac('sha256', 'mt-paas-compare').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b);
}
