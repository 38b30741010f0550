import type { RefuseCrossTenant } from './cross-tenant.js';
import type { TenantAdmission } from './pipeline-options.js';

/**
 * A body as the app may read it: parsed objects as they are; text or bytes (a `text/plain` body the app
 * `JSON.parse`s, Hono's `c.req.json()` on any content type) parsed as JSON, else as a urlencoded form.
 */
export function readableBody(body: unknown): unknown {
  let text: string | undefined;
  if (typeof body === 'string') text = body;
  else if (body instanceof Uint8Array)
    text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
  if (text === undefined) return body;
  const trimmed = text.trim();
  if (trimmed === '') return undefined;
  try {
    return JSON.parse(trimmed) as unknown;
  } catch {
    if (!trimmed.includes('=')) return undefined;
    const form: Record<string, string> = {};
    for (const [key, value] of new URLSearchParams(trimmed)) if (!(key in form)) form[key] = value;
    return form;
  }
}

/** The first value of a body field naming a tenant other than `tenantId`, searched two levels deep. */
function foreignTenant(
  body: unknown,
  tenantId: string,
  fields: readonly string[],
  depth: number,
): string | undefined {
  if (body === null || typeof body !== 'object' || depth > 2) return undefined;
  if (Array.isArray(body)) {
    const count = Math.min(body.length, 1000);
    for (let index = 0; index < count; index++) {
      const found = foreignTenant(body[index], tenantId, fields, depth + 1);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  for (const field of fields) {
    const value = (body as Record<string, unknown>)[field];
    if (value !== undefined && value !== null && value !== tenantId) return String(value).slice(0, 64);
  }
  return undefined;
}

/** The body guard stage: refuses (audited `CROSS_TENANT_ACCESS`) a body that names another tenant. */
export type BodyGuard = (admission: TenantAdmission, body: unknown) => Promise<void>;

/**
 * Builds the body guard. `body` is what the framework parsed, or the raw text / bytes (read as JSON, else as
 * a urlencoded form, whatever the content type claims: the app can read it that way too). Routes with
 * `bodyGuard: false` and requests without a tenant are not checked; an absent body costs nothing.
 */
export function createBodyGuard(stage: {
  fields: readonly string[];
  refuseCrossTenant: RefuseCrossTenant;
}): BodyGuard {
  return async (admission, body) => {
    if (body === undefined || body === null) return;
    if (admission.policy.bodyGuard === false || admission.tenantId === undefined) return;
    const foreign = foreignTenant(readableBody(body), admission.tenantId, stage.fields, 0);
    if (foreign === undefined) return;
    await stage.refuseCrossTenant({
      request: undefined,
      requestId: admission.requestId,
      principal: admission.principal,
      first: { source: admission.source ?? 'header', tenantId: admission.tenantId },
      other: { source: 'body', raw: foreign },
      reason: 'body names another tenant',
      message: `The request body names tenant "${foreign}" but the request is for "${admission.tenantId}"; send data for your own tenant only.`,
    });
  };
}
