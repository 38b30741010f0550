import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';

/**
 * A second local Postgres 15 cluster standing in for a tenant's container database: created with
 * trust auth for local sockets and 127.0.0.1 (except {@link PASSWORD_ROLES}: SCRAM passwords), started,
 * and dropped again by `drop()`.
 */
export interface SecondCluster {
  port: number;
  /** `postgresql://postgres@127.0.0.1:<port>/<database>` */
  url(database?: string): string;
  drop(): void;
}

export const CLUSTER_NAME = 'mtp_tenant_test';

/** Roles the second cluster authenticates by password (SCRAM) from 127.0.0.1; every other role is trusted. */
export const PASSWORD_ROLES = ['mtp_pw_owner_app', 'mtp_pw_secret_app'] as const;

/**
 * Why the second cluster cannot be made here, or undefined when it can. With `MT_PAAS_REQUIRE_SERVICES=1`
 * (CI) a missing server is an error, never a silent skip.
 */
export function secondClusterSkipReason(): string | undefined {
  if (existsSync('/usr/bin/pg_createcluster') && existsSync('/usr/lib/postgresql/15/bin/postgres'))
    return undefined;
  const reason = 'pg_createcluster / PostgreSQL 15 server binaries are not installed';
  if (process.env.MT_PAAS_REQUIRE_SERVICES === '1') {
    throw new Error(
      `${reason} (apt-get install postgresql-15), and MT_PAAS_REQUIRE_SERVICES=1 forbids skipping`,
    );
  }
  return reason;
}

const run = (command: string, args: string[]) =>
  execFileSync(command, args, { stdio: 'pipe', timeout: 120_000 });

export function startSecondCluster(port = 5440): SecondCluster {
  try {
    run('pg_dropcluster', ['--stop', '15', CLUSTER_NAME]); // left over by an aborted run
  } catch {}
  run('pg_createcluster', ['15', CLUSTER_NAME, '-p', String(port)]);
  writeFileSync(
    `/etc/postgresql/15/${CLUSTER_NAME}/pg_hba.conf`,
    `${PASSWORD_ROLES.map((role) => `host all ${role} 127.0.0.1/32 scram-sha-256\n`).join('')}local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n`,
  );
  run('pg_ctlcluster', ['--skip-systemctl-redirect', '15', CLUSTER_NAME, 'start']);
  return {
    port,
    url: (database = 'postgres') => `postgresql://postgres@127.0.0.1:${port}/${database}`,
    drop() {
      run('pg_dropcluster', ['--stop', '15', CLUSTER_NAME]);
    },
  };
}
