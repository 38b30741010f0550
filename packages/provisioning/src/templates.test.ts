import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isMtPaasError } from '@mt-paas/context';
import { describe, expect, it } from 'vitest';
import { checkRenderedFiles, renderTemplate } from './templates.js';

const TEMPLATES = fileURLToPath(new URL('../../../templates/', import.meta.url));
const read = (name: string) => readFileSync(`${TEMPLATES}${name}`, 'utf8');

const values = {
  tenant_id: 'hallym',
  service_id: 'keli_tutor',
  project: 'keli_tutor-hallym',
  subdomain: 'hallym.keli.example.ac.kr',
  frontend_port: 10300,
  backend_port: 10301,
  db_port: 10302,
  db_name: 'keli_tutor',
  db_user: 'tenant',
  db_password: 'c2VjcmV0c2VjcmV0c2Vj',
  db_app_user: 'app',
  db_app_password: 'YXBwLXBhc3N3b3JkLXg',
  db_app_password_fingerprint: 'mt-paas placement app password sha256:0123abcd',
  backend_image: 'keli/backend:1.0',
  frontend_image: 'keli/frontend:1.0',
  market_network: 'servicemarket_service-market-network',
  port_range_start: 10300,
  port_range_end: 10399,
};
const expectations = {
  firstPort: 10300,
  lastPort: 10399,
  marketNetwork: 'servicemarket_service-market-network',
  composeFile: 'docker-compose.yml',
};

describe('the shipped docker templates', () => {
  it('render with every placeholder filled and pass the checks', () => {
    const files = {
      'docker-compose.yml': renderTemplate(read('docker-compose.template.yml'), values, 'compose'),
      '.env': renderTemplate(read('.env.template'), values, '.env'),
      'nginx.conf': renderTemplate(read('nginx.tenant.conf.template'), values, 'nginx'),
      'initdb.sql': renderTemplate(read('initdb.tenant.sql.template'), values, 'initdb'),
    };
    expect(checkRenderedFiles(files, expectations)).toEqual([]);
    expect(files['nginx.conf']).toContain('server_name hallym.keli.example.ac.kr;');
    expect(files['.env']).toContain('\nDATABASE_URL=postgresql://app:YXBwLXBhc3N3b3JkLXg@db:5432/keli_tutor');
    expect(files['.env']).toContain(
      'MIGRATION_DATABASE_URL=postgresql://tenant:c2VjcmV0c2VjcmV0c2Vj@db:5432/keli_tutor',
    );
    expect(files['initdb.sql']).toContain(
      `CREATE ROLE "app" LOGIN PASSWORD 'YXBwLXBhc3N3b3JkLXg' NOSUPERUSER NOBYPASSRLS`,
    );
  });

  it('refuses a template asking for a value mt-paas does not provide', () => {
    expect(() => renderTemplate('a: {{nope}}', values, 'x.yml')).toThrow(/\{\{nope\}\}/);
    try {
      renderTemplate('{{ tenant_id }} {{secret_key}}', values, 'x.yml');
    } catch (error) {
      expect(isMtPaasError(error, 'CONFIG_INVALID')).toBe(true);
    }
  });

  it('refuses values that would inject lines, and leftover braces', () => {
    expect(() => renderTemplate('x: {{tenant_id}}', { tenant_id: 'a\nevil: 1' }, 't')).toThrow(/line break/);
    expect(() => renderTemplate('x: {{Upper}}', values, 't')).toThrow(/left after rendering/);
  });

  it('finds ports outside the block, duplicate ports, missing services, a non-external network, bad YAML', () => {
    const compose = renderTemplate(read('docker-compose.template.yml'), values, 'compose');
    const outside = compose.replace('127.0.0.1:10302:5432', '5432:5432');
    expect(checkRenderedFiles({ 'docker-compose.yml': outside }, expectations)[0]?.message).toMatch(
      /host port 5432, outside the tenant's block 10300-10399/,
    );
    const twice = compose.replace('127.0.0.1:10302:5432', '127.0.0.1:10301:5432');
    expect(checkRenderedFiles({ 'docker-compose.yml': twice }, expectations).map((p) => p.message)).toContain(
      'host port 10301 published twice',
    );
    const internal = compose.replace('external: true', 'external: false');
    expect(checkRenderedFiles({ 'docker-compose.yml': internal }, expectations)[0]?.message).toMatch(
      /not declared external/,
    );
    expect(checkRenderedFiles({ 'docker-compose.yml': 'services: [' }, expectations)[0]?.message).toMatch(
      /not valid YAML/,
    );
    expect(
      checkRenderedFiles({ 'docker-compose.yml': 'services:\n  backend: {}\n' }, expectations).map(
        (p) => p.message,
      ),
    ).toEqual(expect.arrayContaining(['no "frontend" service', 'no "db" service']));
    expect(checkRenderedFiles({ 'docker-compose.yml': compose, x: '{{left}}' }, expectations)).toEqual([
      { file: 'x', message: 'a {{placeholder}} is left' },
    ]);
  });
});
