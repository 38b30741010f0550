import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  detectContainerRuntime,
  pingDockerApi,
  probeAmqp,
  probeRedis,
  probeTcp,
  redactUrl,
} from './probes.js';

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
});

function listen(
  onData: (data: string, reply: (text: string) => void) => void,
  path?: string,
): Promise<number> {
  const server = createServer((socket) => {
    socket.on('data', (chunk) => onData(chunk.toString(), (text) => socket.write(text)));
    socket.on('error', () => {});
  });
  servers.push(server);
  return new Promise((resolve) => {
    if (path) server.listen(path, () => resolve(0));
    else server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port));
  });
}

async function closedPort(): Promise<number> {
  const port = await listen(() => {});
  await new Promise((resolve) => servers.pop()!.close(resolve));
  return port;
}

describe('probes', () => {
  it('probeTcp tells an open port from a closed one', async () => {
    const open = await listen(() => {});
    expect(await probeTcp({ host: '127.0.0.1', port: open })).toMatchObject({ ok: true });
    const result = await probeTcp({ host: '127.0.0.1', port: await closedPort() });
    expect(result).toMatchObject({ ok: false });
    expect(result.ok ? '' : result.error).toContain('ECONNREFUSED');
  });

  it('probeRedis speaks RESP: PONG is a server, an error reply is reported', async () => {
    const pong = await listen((data, reply) => {
      if (data.includes('PING')) reply('+PONG\r\n');
    });
    expect(await probeRedis(`redis://127.0.0.1:${pong}`)).toMatchObject({ ok: true });

    const auth = await listen((_, reply) => reply('-NOAUTH Authentication required.\r\n'));
    const result = await probeRedis(`redis://127.0.0.1:${auth}`);
    expect(result.ok ? '' : result.error).toContain('NOAUTH');
  });

  it('probeRedis sends AUTH when the URL has a password', async () => {
    let seen = '';
    const port = await listen((data, reply) => {
      seen += data;
      if (data.includes('PING')) reply('+OK\r\n+PONG\r\n');
    });
    expect(await probeRedis(`redis://:s3cret@127.0.0.1:${port}`)).toMatchObject({ ok: true });
    expect(seen).toContain('AUTH');
    expect(seen).toContain('s3cret');
  });

  it('probeAmqp only needs the port to accept a connection', async () => {
    const port = await listen(() => {});
    expect(await probeAmqp(`amqp://guest:guest@127.0.0.1:${port}`)).toMatchObject({ ok: true });
    expect(await probeAmqp(`amqp://guest:guest@127.0.0.1:${await closedPort()}`)).toMatchObject({
      ok: false,
    });
  });

  it('detectContainerRuntime needs a socket whose Docker API answers /_ping, and can be switched off', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'test-env-'));
    const docker = join(dir, 'docker.sock');
    await listen((data, reply) => {
      if (data.startsWith('GET /_ping'))
        reply('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK');
    }, docker);
    expect(await detectContainerRuntime({ DOCKER_HOST: `unix://${docker}` })).toMatchObject({ found: true });
    expect(
      await detectContainerRuntime({ DOCKER_HOST: `unix://${docker}`, MT_PAAS_TEST_CONTAINERS: '0' }),
    ).toEqual({
      found: false,
      reason: 'testcontainers disabled by MT_PAAS_TEST_CONTAINERS=0',
    });
    const notDocker = join(dir, 'silent.sock');
    await listen(() => {}, notDocker);
    expect(await pingDockerApi({ path: notDocker }, 200)).toMatchObject({ ok: false });
  });

  it('redactUrl masks passwords', () => {
    expect(redactUrl('postgres://app:hunter2@db:5432/x')).toBe('postgres://app:***@db:5432/x');
  });
});
