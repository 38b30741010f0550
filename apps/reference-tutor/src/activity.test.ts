import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { TEST_ENV, tutorClient } from './__fixtures__/tutor-client.js';
import { type RunningTutor, startTutor } from './server.js';

/** A question to the tutor reaches the LRS as an xAPI `asked` statement of the user, in the tenant. */
let lrs: Server;
let tutor: RunningTutor;
interface Statement {
  verb: { id: string };
  object: { id: string };
  actor: { account: { name: string } };
}
const statements: Statement[] = [];

beforeAll(async () => {
  lrs = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => {
      body += chunk;
    });
    request.on('end', () => {
      if (request.method === 'POST' && request.url === '/xapi/statements')
        statements.push(...[JSON.parse(body)].flat());
      response.writeHead(200, { 'content-type': 'application/json' }).end('[]');
    });
  });
  await new Promise<void>((resolve) => lrs.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(lrs.address() as AddressInfo).port}/xapi`;
  tutor = await startTutor({
    port: 0,
    env: {
      ...TEST_ENV,
      TUTOR_DATA_DIR: 'memory',
      LRS_ENDPOINT: endpoint,
      PUBLIC_URL: 'https://tutor.example',
    },
    // the timers run: the activity logger sends its buffer on them
  });
}, 60_000);

afterAll(async () => {
  await tutor?.close();
  lrs?.close();
});

it('logs the question as an xAPI statement', async () => {
  const client = tutorClient(tutor.url);
  await client.createTenant('hallym', '한림대학교', 'admin@hallym.ac.kr');
  const { token, user } = await client.adminSession('hallym', 'admin@hallym.ac.kr');
  const answer = await client.chat('hallym', token, { question: 'Is anything here?' });
  expect(answer.status).toBe(200);
  await expect
    .poll(() => statements.find((statement) => statement.verb.id.endsWith('/asked')), { timeout: 15_000 })
    .toBeDefined();
  const asked = statements.find((statement) => statement.verb.id.endsWith('/asked'))!;
  expect(asked.object.id).toBe('https://tutor.example/activities/ai_tutor');
  expect(JSON.stringify(asked)).toContain('hallym');
  expect(asked.actor.account.name).toBe(user.id);
});
