import http from 'node:http';

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
