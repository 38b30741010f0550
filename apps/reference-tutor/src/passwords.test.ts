import { describe, expect, it } from 'vitest';
import { checkNewPassword, hashPassword, hashToken, newOneTimeToken, verifyPassword } from './passwords.js';

describe('passwords', () => {
  it('verifies the right password only, with a fresh salt per hash', async () => {
    const hash = await hashPassword('correct horse battery');
    expect(hash).toMatch(/^scrypt\$16384\$8\$1\$/);
    expect(await hashPassword('correct horse battery')).not.toBe(hash);
    expect(await verifyPassword('correct horse battery', hash)).toBe(true);
    expect(await verifyPassword('correct horse batterY', hash)).toBe(false);
    expect(await verifyPassword('', hash)).toBe(false);
  });

  it('never accepts a user without a password or a malformed hash', async () => {
    expect(await verifyPassword('anything at all', null)).toBe(false);
    expect(await verifyPassword('anything at all', 'plain-text')).toBe(false);
  });

  it('refuses short passwords', () => {
    expect(() => checkNewPassword('short')).toThrow(/10 to 200/);
    expect(() => checkNewPassword(42)).toThrow(/10 to 200/);
    expect(checkNewPassword('long enough pw')).toBe('long enough pw');
  });

  it('stores only the hash of one-time tokens', () => {
    const { token, tokenHash } = newOneTimeToken();
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(tokenHash).toBe(hashToken(token));
    expect(tokenHash).not.toContain(token);
  });
});
