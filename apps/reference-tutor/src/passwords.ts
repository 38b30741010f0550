/**
 * Password hashing and one-time tokens with `node:crypto` only: scrypt (memory-hard, in Node's
 * standard library — no native add-on to build) and SHA-256 for stored one-time tokens.
 */
import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { MtPaasError } from '@mt-paas/context';

const N = 16_384;
const R = 8;
const P = 1;
const KEY_LENGTH = 32;

function derive(password: string, salt: Buffer, n: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(
      password.normalize('NFKC'),
      salt,
      KEY_LENGTH,
      { N: n, r, p, maxmem: 64 * 1024 * 1024 },
      (error, key) => (error ? reject(error) : resolve(key)),
    ),
  );
}

/** Minimum rules for a new password; a refusal says what is wrong. */
export function checkNewPassword(password: unknown): string {
  if (typeof password !== 'string' || password.length < 10 || password.length > 200) {
    throw new MtPaasError('INVALID_REQUEST', 'Choose a password of 10 to 200 characters.');
  }
  return password;
}

/** `scrypt$N$r$p$<salt b64url>$<hash b64url>` */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const hash = await derive(password, salt, N, R, P);
  return ['scrypt', N, R, P, salt.toString('base64url'), hash.toString('base64url')].join('$');
}

// A hash to compare against when the user does not exist or has no password, so that the answer takes
// as long as for a wrong password (no user enumeration by timing).
const DUMMY_HASH = `scrypt$${N}$${R}$${P}$${Buffer.alloc(16).toString('base64url')}$${Buffer.alloc(KEY_LENGTH).toString('base64url')}`;

/** Constant-time check; `null` (no password set) compares against a dummy hash and fails. */
export async function verifyPassword(password: string, stored: string | null): Promise<boolean> {
  const parts = (stored ?? DUMMY_HASH).split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [, n, r, p, salt, hash] = parts as [string, string, string, string, string, string];
  const expected = Buffer.from(hash, 'base64url');
  const actual = await derive(password, Buffer.from(salt, 'base64url'), Number(n), Number(r), Number(p));
  return stored !== null && expected.length === actual.length && timingSafeEqual(expected, actual);
}

/** A one-time token for the user and the SHA-256 the database keeps of it. */
export function newOneTimeToken(): { token: string; tokenHash: string } {
  const token = randomBytes(32).toString('base64url');
  return { token, tokenHash: hashToken(token) };
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
