import { MtPaasError } from '@mt-paas/context';

/** A body as an adapter hands it over: bytes already read, or the stream to read. */
export type RawBody = Uint8Array | string | AsyncIterable<Uint8Array | string> | undefined | null;

function tooLarge(maxBytes: number): MtPaasError {
  return new MtPaasError(
    'PAYLOAD_TOO_LARGE',
    `The body is larger than ${maxBytes} bytes; marketplace events are small JSON documents.`,
    { details: { maxBytes } },
  );
}

/**
 * Reads a body into bytes, refusing (413 `PAYLOAD_TOO_LARGE`) as soon as it passes `maxBytes` —
 * by `Content-Length` before reading, and by counting while reading (chunked bodies).
 */
export async function readBody(body: RawBody, maxBytes: number, contentLength?: string): Promise<Buffer> {
  if (contentLength !== undefined && /^\d+$/.test(contentLength) && Number(contentLength) > maxBytes) {
    throw tooLarge(maxBytes);
  }
  if (body === undefined || body === null) return Buffer.alloc(0);
  if (typeof body === 'string') {
    const bytes = Buffer.from(body, 'utf8');
    if (bytes.length > maxBytes) throw tooLarge(maxBytes);
    return bytes;
  }
  if (body instanceof Uint8Array) {
    if (body.byteLength > maxBytes) throw tooLarge(maxBytes);
    return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : Buffer.from(chunk);
    total += bytes.length;
    if (total > maxBytes) throw tooLarge(maxBytes);
    chunks.push(bytes);
  }
  return Buffer.concat(chunks, total);
}
