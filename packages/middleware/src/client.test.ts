import { describe, expect, it } from 'vitest';
import { createTenantFetch, detectTenant } from './client.js';

function page(url: string, cookie = '') {
  const parsed = new URL(url);
  return { location: { search: parsed.search, hostname: parsed.hostname }, document: { cookie } };
}

describe('detectTenant', () => {
  it('prefers ?tenant=, then the cookie, then the subdomain (seed 002 §2.2)', () => {
    const base = { baseDomain: 'ktutor.k-university.ai' };
    expect(
      detectTenant({
        ...page('https://univ_8.ktutor.k-university.ai/?tenant=univ_9', 'tenant_id=univ_7'),
        ...base,
      }),
    ).toEqual({
      tenantId: 'univ_9',
      source: 'query',
    });
    expect(
      detectTenant({ ...page('https://univ_8.ktutor.k-university.ai/', 'a=1; tenant_id=univ_7'), ...base }),
    ).toEqual({
      tenantId: 'univ_7',
      source: 'cookie',
    });
    expect(detectTenant({ ...page('https://univ_8.ktutor.k-university.ai/chat'), ...base })).toEqual({
      tenantId: 'univ_8',
      source: 'subdomain',
    });
    expect(detectTenant({ ...page('https://www.ktutor.k-university.ai/'), ...base })).toBeUndefined();
    expect(detectTenant({ ...page('https://a.b.ktutor.k-university.ai/'), ...base })).toBeUndefined();
  });

  it('skips values that are not tenant ids', () => {
    expect(detectTenant(page('https://x.test/?tenant=%3Cscript%3E', 'tenant_id=Robert%27'))).toBeUndefined();
    expect(detectTenant(page('https://x.test/?tenant=UNIV_8', 'tenant_id=univ_8'))).toEqual({
      tenantId: 'univ_8',
      source: 'cookie',
    });
  });

  it('remembers a tenant from the URL in the cookie when asked', () => {
    const current = page('https://x.test/?tenant=univ_8');
    detectTenant({ ...current, persist: true });
    expect(current.document.cookie).toBe('tenant_id=univ_8; path=/; SameSite=Lax');
  });
});

describe('createTenantFetch', () => {
  it('adds X-Tenant-ID to every call without overriding an explicit one', async () => {
    const calls: Array<{ input: unknown; headers: Headers }> = [];
    const fetch = async (input: string | URL | Request, init?: RequestInit) => {
      calls.push({ input, headers: new Headers(init?.headers) });
      return new Response('{}');
    };
    const api = createTenantFetch({ ...page('https://x.test/?tenant=univ_8'), fetch });
    await api('/api/chat', { headers: { accept: 'application/json' } });
    await api('/api/chat', { headers: { 'X-Tenant-ID': 'other_one' } });
    expect(calls[0]?.headers.get('x-tenant-id')).toBe('univ_8');
    expect(calls[0]?.headers.get('accept')).toBe('application/json');
    expect(calls[1]?.headers.get('x-tenant-id')).toBe('other_one');
  });

  it('sends no header when no tenant is found, and takes a fixed tenant when given', async () => {
    const seen: Array<string | null> = [];
    const fetch = async (_input: string | URL | Request, init?: RequestInit) => {
      seen.push(new Headers(init?.headers).get('x-tenant-id'));
      return new Response('{}');
    };
    await createTenantFetch({ ...page('https://x.test/'), fetch })('/a');
    await createTenantFetch({ tenantId: 'univ_3', fetch })('/a');
    expect(seen).toEqual([null, 'univ_3']);
  });

  it('imports nothing (browser-safe)', async () => {
    const { readFile } = await import('node:fs/promises');
    const source = await readFile(new URL('./client.ts', import.meta.url), 'utf8');
    expect(source).not.toMatch(/^\s*import\s/m);
  });
});
