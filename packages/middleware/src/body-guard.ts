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
