import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { MtPaasError } from '@mt-paas/context';

/** A named encryption key. */
export interface SecretBoxKey {
  /** Written into every ciphertext (letters, digits, `_`, `-`; up to 32 characters). */
  id: string;
  /** The key material: any string of at least 16 characters (`security.encryption.key`). */
  secret: string;
}

/** Options of {@link createSecretBox}. */
export interface SecretBoxOptions {
  /**
   * The current key, used to encrypt. A plain string gets the id `k` + the first 8 hex digits
   * of its SHA-256, so rotating the configured key changes the id by itself.
   */
  key: string | SecretBoxKey;
  /** Retired keys, still accepted to decrypt (and re-encrypt) older ciphertexts. */
  previousKeys?: readonly (string | SecretBoxKey)[];
}

/** AES-256-GCM encryption of tenant secrets (bring-your-own API keys) with key rotation. */
export interface SecretBox {
  /** Id of the current key. */
  readonly keyId: string;
  /**
   * Encrypts `plaintext` as `mtp1:<keyId>:<base64url(iv ‖ ciphertext ‖ tag)>`. `context` (for
   * example `univ_8/openai`) is bound as associated data: the ciphertext only decrypts with
   * the same context, so a key copied to another tenant is refused.
   */
  encrypt(plaintext: string, context?: string): string;
  /** Decrypts with the key named in the ciphertext (current or previous). */
  decrypt(ciphertext: string, context?: string): string;
  /** True when `ciphertext` was made with another key than the current one. */
  needsReencryption(ciphertext: string): boolean;
  /** Decrypts with whichever key made it and encrypts with the current key. */
  reencrypt(ciphertext: string, context?: string): string;
}

const PREFIX = 'mtp1';
const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/;
const IV_BYTES = 12;
const TAG_BYTES = 16;

function normaliseKey(key: string | SecretBoxKey): { id: string; material: Buffer } {
  const named = typeof key === 'string' ? { id: '', secret: key } : key;
  if (typeof named.secret !== 'string' || named.secret.length < 16) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      'The encryption key (security.encryption.key) must be at least 16 characters; generate one with `openssl rand -base64 32`.',
    );
  }
  const id =
    named.id === '' ? `k${createHash('sha256').update(named.secret).digest('hex').slice(0, 8)}` : named.id;
  if (!KEY_ID.test(id)) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      `The encryption key id "${id}" is invalid; use up to 32 letters, digits, "_" or "-".`,
    );
  }
  // HKDF turns any configured string (passphrase, base64, hex) into a uniform 256-bit key.
  const material = Buffer.from(
    hkdfSync('sha256', Buffer.from(named.secret, 'utf8'), 'mt-paas/secret-box', 'aes-256-gcm', 32),
  );
  return { id, material };
}

function parse(ciphertext: string): { keyId: string; payload: Buffer } {
  const [prefix, keyId, body, ...rest] = ciphertext.split(':');
  if (prefix !== PREFIX || keyId === undefined || body === undefined || rest.length > 0) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      'A stored secret is not an mt-paas ciphertext (mtp1:<keyId>:<data>); store tenant keys with encrypt() or encryptTenantApiKey().',
    );
  }
  const payload = Buffer.from(body, 'base64url');
  if (payload.length < IV_BYTES + TAG_BYTES) {
    throw new MtPaasError('CONFIG_INVALID', 'A stored secret is truncated; store it again.');
  }
  return { keyId, payload };
}

/**
 * Creates a {@link SecretBox} over AES-256-GCM (node:crypto) with the configured key and any
 * retired keys.
 *
 * @example
 * const box = createSecretBox({ key: process.env.AES_SECRET_KEY!, previousKeys: [process.env.AES_OLD_KEY!] });
 * const stored = box.encrypt('sk-tenant-key', 'univ_8/openai');
 * if (box.needsReencryption(stored)) save(box.reencrypt(stored, 'univ_8/openai'));
 */
export function createSecretBox(options: SecretBoxOptions): SecretBox {
  const current = normaliseKey(options.key);
  const keys = new Map<string, Buffer>([[current.id, current.material]]);
  for (const previous of options.previousKeys ?? []) {
    const key = normaliseKey(previous);
    if (!keys.has(key.id)) keys.set(key.id, key.material);
  }

  function encrypt(plaintext: string, context = ''): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', current.material, iv);
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const encrypted = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    const payload = Buffer.concat([iv, encrypted, cipher.getAuthTag()]);
    return `${PREFIX}:${current.id}:${payload.toString('base64url')}`;
  }

  function decrypt(ciphertext: string, context = ''): string {
    const { keyId, payload } = parse(ciphertext);
    const material = keys.get(keyId);
    if (material === undefined) {
      throw new MtPaasError(
        'CONFIG_INVALID',
        `A stored secret was encrypted with key "${keyId}", which is not configured; add that key to the previous keys, or store the secret again.`,
        { details: { keyId } },
      );
    }
    const decipher = createDecipheriv('aes-256-gcm', material, payload.subarray(0, IV_BYTES));
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(payload.subarray(payload.length - TAG_BYTES));
    try {
      return Buffer.concat([
        decipher.update(payload.subarray(IV_BYTES, payload.length - TAG_BYTES)),
        decipher.final(),
      ]).toString('utf8');
    } catch (error) {
      throw new MtPaasError(
        'CONFIG_INVALID',
        'A stored secret failed authentication (tampered, or stored for another tenant or provider); store it again.',
        { details: { keyId }, cause: error },
      );
    }
  }

  return {
    keyId: current.id,
    encrypt,
    decrypt,
    needsReencryption: (ciphertext) => parse(ciphertext).keyId !== current.id,
    reencrypt: (ciphertext, context) => encrypt(decrypt(ciphertext, context), context),
  };
}
