/**
 * `isolation.mode: docker` through @mt-paas/provisioning's docker placement: the tenant's compose project is
 * rendered from `isolation.docker.compose_template` with a port block at `port_range_start`. There is no Docker
 * engine here, so onboarding stops at the storage step (the documented behaviour: start the printed command,
 * then onboard again).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestDatabase, describeWith, type TestDatabase } from '@mt-paas/test-env';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FIXTURE_MIGRATIONS } from './__fixtures__/app.js';
import { adminQuery } from './__fixtures__/postgres.js';
import { createServiceFramework, type ServiceFramework } from './index.js';

const TEMPLATE = fileURLToPath(new URL('../../../templates/docker-compose.template.yml', import.meta.url));

describeWith(['postgres'], 'isolation.mode docker', () => {
  let database: TestDatabase;
  let mt: ServiceFramework;
  let deployRoot: string;

  beforeAll(async () => {
    database = await createTestDatabase({ label: 'fw_docker' });
    deployRoot = mkdtempSync(join(tmpdir(), 'mtp-fw-docker-'));
    mt = await createServiceFramework({
      config: `
service:
  id: keli_tutor
  public_url: https://keli.example.ac.kr
isolation:
  mode: DOCKER_PER_TENANT
  docker:
    port_range_start: 41200
    port_range_size: 10
    compose_template: ${TEMPLATE}
database:
  central:
    url: ${database.url}
    pool_size: 2
logging:
  level: silent
`,
      env: {},
      appRole: 'mtp_fw_app',
      migrationsFolder: FIXTURE_MIGRATIONS,
      dockerDeployRoot: deployRoot,
    });
  });

  afterAll(async () => {
    await mt?.close();
    if (deployRoot !== undefined) rmSync(deployRoot, { recursive: true, force: true });
    await database?.drop();
  });

  it('renders the tenant compose project in its port block and stops at storage without an engine', async () => {
    const failure = await mt
      .onboard({ id: 'hallym', name: 'Hallym University' })
      .catch((error: unknown) => error);
    expect(failure).toMatchObject({ code: 'TENANT_STORAGE_UNAVAILABLE' });
    expect((await mt.catalog.directory.get('hallym' as never))?.status).toBe('provisioning');
    const compose = readFileSync(join(deployRoot, 'hallym', 'docker-compose.yml'), 'utf8');
    expect(compose).toContain('41200'); // frontend port: offset 0 of block 0
    expect(existsSync(join(deployRoot, 'hallym', '.env'))).toBe(true);
    expect(
      await adminQuery(database.url, "SELECT block FROM mt_paas.port_blocks WHERE tenant_id = 'hallym'"),
    ).toEqual([{ block: 0 }]);
  });
});
