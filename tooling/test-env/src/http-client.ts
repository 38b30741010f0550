/**
 * Raw HTTP client for adapter conformance suites (middleware, marketplace): full control over headers and
 * body bytes through node:http, and hand-written requests over a plain socket.
 */
import http from 'node:http';
import net from 'node:net';

/** A response as the tests see it. */
export interface TestResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: tests read response bodies loosely
  json: any;
}
/** Sends one request with full control over headers and body bytes through node:http. */
export function send(
  baseUrl: string,
  options: {
    method?: string;
    path: string;
    headers?: Record<string, string>;
    body?: unknown;
    /** Sent byte for byte. */
    rawBody?: string | Buffer;
    /** Send without Content-Length (chunked transfer encoding). */
    chunked?: boolean;
  },
): Promise<TestResponse> {
  const url = new URL(baseUrl);
  const payload =
    options.rawBody !== undefined
      ? Buffer.isBuffer(options.rawBody)
        ? options.rawBody
        : Buffer.from(options.rawBody)
      : options.body === undefined
        ? undefined
        : Buffer.from(JSON.stringify(options.body));
  return new Promise((resolve, reject) => {
    const request = http.request(
      {
        host: url.hostname,
        port: url.port,
        method: options.method ?? 'GET',
        path: options.path,
        headers: {
          ...(payload === undefined
            ? {}
            : {
                'content-type': 'application/json',
                ...(options.chunked === true ? {} : { 'content-length': String(payload.length) }),
              }),
          ...options.headers,
        },
        agent: false,
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: response.statusCode ?? 0, headers: response.headers, text, json });
        });
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    if (payload !== undefined) request.write(payload);
    request.end();
  });
}

/**
 * Sends one request with a hand-written request target (absolute-form, raw bytes, `..`, `#`) over a
 * plain socket: node:http refuses or rewrites such targets, an attacker's client does not.
 */
export function sendRaw(
  baseUrl: string,
  options: {
    method?: string;
    target: string;
    /** Header lines in order; a list may repeat a name. */
    headers?: Record<string, string> | ReadonlyArray<readonly [string, string]>;
    body?: string;
  },
): Promise<TestResponse> {
  const url = new URL(baseUrl);
  const body = options.body === undefined ? undefined : Buffer.from(options.body);
  const given = Array.isArray(options.headers)
    ? (options.headers as ReadonlyArray<readonly [string, string]>)
    : Object.entries(options.headers ?? {});
  const lines: Array<readonly [string, string]> = [
    ...(given.some(([name]) => name.toLowerCase() === 'host') ? [] : [['host', url.host] as const]),
    ['connection', 'close'],
    ...(body === undefined ? [] : [['content-length', String(body.length)] as const]),
    ...given,
  ];
  const head = `${options.method ?? 'GET'} ${options.target} HTTP/1.1\r\n${lines
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('')}\r\n`;
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(url.port), url.hostname, () => {
      socket.write(Buffer.concat([Buffer.from(head, 'latin1'), body ?? Buffer.alloc(0)]));
    });
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('end', () => {
      const raw = Buffer.concat(chunks);
      const split = raw.indexOf('\r\n\r\n');
      const [statusLine = '', ...lines] = raw
        .subarray(0, split === -1 ? raw.length : split)
        .toString('latin1')
        .split('\r\n');
      const responseHeaders: http.IncomingHttpHeaders = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        if (colon > 0) responseHeaders[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
      }
      let payload = split === -1 ? Buffer.alloc(0) : raw.subarray(split + 4);
      if (/chunked/i.test(String(responseHeaders['transfer-encoding'] ?? ''))) {
        const parts: Buffer[] = [];
        let rest = payload;
        for (;;) {
          const lineEnd = rest.indexOf('\r\n');
          const size = Number.parseInt(rest.subarray(0, lineEnd).toString('latin1'), 16);
          if (lineEnd === -1 || !(size > 0)) break;
          parts.push(rest.subarray(lineEnd + 2, lineEnd + 2 + size));
          rest = rest.subarray(lineEnd + 2 + size + 2);
        }
        payload = Buffer.concat(parts);
      }
      const text = payload.toString('utf8');
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      resolve({ status: Number(statusLine.split(' ')[1] ?? 0), headers: responseHeaders, text, json });
    });
  });
}

/** A GET with header lines written verbatim (`Name: value`, repeated names included), over a plain socket. */
export function sendRawLines(
  baseUrl: string,
  target: string,
  lines: readonly string[],
): Promise<TestResponse> {
  const headers = lines.map((line) => {
    const colon = line.indexOf(':');
    return [line.slice(0, colon), line.slice(colon + 1).trim()] as const;
  });
  return sendRaw(baseUrl, { target, headers });
}
