/**
 * Server-sent events framing (WHATWG HTML § 9.2): `event:` + one `data:` line per line of the JSON.
 * The browser and the tests read the stream with `eventsource-parser`.
 */
import type { ServerResponse } from 'node:http';

export function sseEvent(event: string, data: unknown): string {
  const json = JSON.stringify(data);
  return `event: ${event}\n${json
    .split('\n')
    .map((line) => `data: ${line}`)
    .join('\n')}\n\n`;
}

/** Writes the SSE response head on a raw response (after `reply.hijack()`), with the given extra headers. */
export function startSse(
  raw: ServerResponse,
  headers: Record<string, string | string[] | number | undefined>,
) {
  const head: Record<string, string | string[] | number> = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined) head[name] = value;
  raw.writeHead(200, {
    ...head,
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
}
