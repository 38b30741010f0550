import type { Server } from 'node:http';
import type { Duplex } from 'node:stream';

function reply(socket: Duplex, status: number, reason: string, message: string): void {
  const body = JSON.stringify({ error: { code: 'INVALID_REQUEST', message } });
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/**
 * Answers a request Node's HTTP parser refused (oversized header block, bad header bytes) with the
 * mt-paas JSON error shape instead of a bare status line: 431 for headers over the server's
 * `maxHeaderSize`, 400 for the rest. Such requests never reach a framework, so no adapter can.
 * Pass it to Fastify as `Fastify({ clientErrorHandler: handleClientError })` (Fastify installs its own listener).
 */
export function handleClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  if (error.code === 'HPE_HEADER_OVERFLOW') {
    reply(
      socket,
      431,
      'Request Header Fields Too Large',
      'The request headers are too large; send fewer or smaller headers.',
    );
    return;
  }
  reply(socket, 400, 'Bad Request', 'The request could not be parsed; check its request line and headers.');
}

/**
 * Installs {@link handleClientError} on an `http.Server` (Express, Hono's node server).
 *
 * @example
 * answerClientErrorsAsJson(app.listen(3000));
 */
export function answerClientErrorsAsJson(server: Server): void {
  server.on('clientError', handleClientError);
}
