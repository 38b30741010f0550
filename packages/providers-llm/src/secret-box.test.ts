import { describe, expect, it } from 'vitest';
import { createSecretBox } from './secret-box.js';

const OLD = 'old-key-0123456789abcdef';
const NEW = 'new-key-fedcba9876543210';

describe('createSecretBox', () => {
  it('round-trips with AES-256-GCM and a key id prefix', () => {
    const box = createSecretBox({ key: NEW });
    const ciphertext = box.encrypt('sk-tenant-secret', 'univ_8/openai');
    expect(ciphertext).toMatch(new RegExp(`^mtp1:${box.keyId}:[A-Za-z0-9_-]+$`));
    expect(ciphertext).not.toContain('sk-tenant-secret');
    expect(box.decrypt(ciphertext, 'univ_8/openai')).toBe('sk-tenant-secret');
    expect(box.encrypt('sk-tenant-secret', 'univ_8/openai')).not.toBe(ciphertext);
  });

  it('refuses a ciphertext bound to another tenant or provider', () => {
    const box = createSecretBox({ key: NEW });
    const ciphertext = box.encrypt('sk-tenant-secret', 'univ_8/openai');
    expect(() => box.decrypt(ciphertext, 'univ_9/openai')).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
  });

  it('refuses a tampered ciphertext', () => {
    const box = createSecretBox({ key: NEW });
    const ciphertext = box.encrypt('sk-tenant-secret');
    const [prefix, id, data] = ciphertext.split(':') as [string, string, string];
    const bytes = Buffer.from(data, 'base64url');
    bytes[14] = bytes[14]! ^ 1;
    expect(() => box.decrypt(`${prefix}:${id}:${bytes.toString('base64url')}`)).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
  });

  it('rotates: decrypts with a previous key, re-encrypts with the current one', () => {
    const before = createSecretBox({ key: OLD });
    const stored = before.encrypt('sk-tenant-secret', 'univ_8/openai');
    const after = createSecretBox({ key: NEW, previousKeys: [OLD] });
    expect(after.keyId).not.toBe(before.keyId);
    expect(after.needsReencryption(stored)).toBe(true);
    expect(after.decrypt(stored, 'univ_8/openai')).toBe('sk-tenant-secret');
    const rotated = after.reencrypt(stored, 'univ_8/openai');
    expect(after.needsReencryption(rotated)).toBe(false);
    expect(createSecretBox({ key: NEW }).decrypt(rotated, 'univ_8/openai')).toBe('sk-tenant-secret');
  });

  it('names the missing key when a ciphertext was made with an unknown key', () => {
    const stored = createSecretBox({ key: { id: 'k2024', secret: OLD } }).encrypt('x');
    expect(() => createSecretBox({ key: NEW }).decrypt(stored)).toThrow(/"k2024"/);
  });

  it('rejects short keys and foreign strings', () => {
    expect(() => createSecretBox({ key: 'short' })).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
    expect(() => createSecretBox({ key: NEW }).decrypt('plain-text-key')).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
  });
});
