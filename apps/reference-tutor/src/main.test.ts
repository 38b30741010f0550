import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { TEST_ENV } from './__fixtures__/tutor-client.js';

/** The process contract the demo and the end-to-end tests rely on: the listening line, health, SIGTERM → exit 0. */
it('prints its URL, serves, and exits 0 on SIGTERM', async () => {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(new URL('./main.ts', import.meta.url))],
    {
      env: {
        ...process.env,
        ...TEST_ENV,
        PORT: '0',
        HOST: '127.0.0.1',
        TUTOR_DATA_DIR: 'memory',
        LOG_LEVEL: 'silent',
      },
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stderr.on('data', (chunk) => {
    output += chunk;
  });
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (chunk) => {
      output += chunk;
      const match = /reference-tutor listening on (http:\/\/127\.0\.0\.1:\d+)\n/.exec(output);
      if (match) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`exited with ${code} before listening:\n${output}`)));
  });
  const health = await fetch(`${url}/api/health`);
  expect(await health.json()).toMatchObject({ status: 'healthy', service: 'keli_tutor' });
  child.kill('SIGTERM');
  const [code] = await once(child, 'exit');
  expect(code).toBe(0);
}, 60_000);
