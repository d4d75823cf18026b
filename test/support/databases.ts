import { spawn, type ChildProcess } from 'node:child_process';
import { INSTALL_SERVICES, requireTool, runTool } from './tools.js';
import { chown, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitFor } from '../../src/dev/ports.js';

/**
 * Real PostgreSQL and MariaDB servers for tests, each in a throwaway directory,
 * listening on 127.0.0.1 at a free port only, and removed again by `stop()`. Tests
 * of the database probe drivers log in to these rather than to a mock, so a
 * protocol mistake fails the way it would against production.
 */

const run = runTool;

/** A running throwaway database server. */
export interface DatabaseServer {
  host: string;
  port: number;
  /** Runs SQL as the server's administrator over the unix socket (setup: extra roles, grants). */
  exec(sql: string): Promise<string>;
  stop(): Promise<void>;
}

export interface DatabaseOptions {
  user: string;
  password: string;
  database: string;
  /** Serve TLS with this certificate and key (PEM); plaintext only otherwise. */
  tls?: { certPem: string; keyPem: string };
}

export interface PostgresOptions extends DatabaseOptions {
  /** pg_hba.conf lines placed before the default ones (e.g. "host all md5user 127.0.0.1/32 md5"). */
  hbaRules?: string[];
}

/** Where this machine's PostgreSQL server binaries live: `pg_config --bindir`, else the newest /usr/lib/postgresql/N/bin. */
async function postgresBinDir(): Promise<string> {
  try {
    const { stdout } = await run('pg_config', ['--bindir']);
    const dir = stdout.trim();
    if (existsSync(join(dir, 'initdb'))) return dir;
  } catch {
    /* fall through */
  }
  const versions = (await readdir('/usr/lib/postgresql').catch(() => [] as string[])).sort(
    (a, b) => Number(b) - Number(a),
  );
  for (const version of versions) {
    const dir = `/usr/lib/postgresql/${version}/bin`;
    if (existsSync(join(dir, 'initdb'))) return dir;
  }
  throw new Error(`PostgreSQL server binaries not found: run \`${INSTALL_SERVICES}\``);
}

async function postgresUid(): Promise<{ uid: number; gid: number }> {
  const [uid, gid] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])]);
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/** Runs a command as the `postgres` OS user: PostgreSQL refuses to run as root. */
function asPostgres(command: string, args: string[]): [string, string[]] {
  return process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', command, ...args]] : [command, args];
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function quoteLiteral(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/**
 * Starts PostgreSQL: initdb with `user` as the superuser whose password is stored
 * as SCRAM-SHA-256, TCP connections on 127.0.0.1 authenticated with
 * scram-sha-256, the unix socket (for `exec`) trusted, and `database` created.
 */
export async function startPostgres(options: PostgresOptions): Promise<DatabaseServer> {
  const bin = await postgresBinDir();
  const dir = await mkdtemp(join(tmpdir(), 'atoll-pg-'));
  const data = join(dir, 'data');
  const owner = process.getuid?.() === 0 ? await postgresUid() : undefined;
  let child: ChildProcess | undefined;

  const stop = async (): Promise<void> => {
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child!.once('exit', resolve));
      const [cmd, args] = asPostgres(join(bin, 'pg_ctl'), ['stop', '-D', data, '-m', 'immediate', '-w']);
      await run(cmd, args).catch(() => child?.kill('SIGKILL'));
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    }
    await rm(dir, { recursive: true, force: true });
  };

  try {
    const pwfile = join(dir, 'pwfile');
    await writeFile(pwfile, options.password + '\n', { mode: 0o600 });
    if (owner) {
      await chown(dir, owner.uid, owner.gid);
      await chown(pwfile, owner.uid, owner.gid);
    }
    const [initCmd, initArgs] = asPostgres(join(bin, 'initdb'), [
      '-D',
      data,
      '--username',
      options.user,
      '--pwfile',
      pwfile,
      '--auth-host=scram-sha-256',
      '--auth-local=trust',
      '--encoding=UTF8',
      '--no-sync',
      '--no-instructions',
    ]);
    await run(initCmd, initArgs);
    await rm(pwfile);

    const hba = join(data, 'pg_hba.conf');
    await writeFile(hba, [...(options.hbaRules ?? []), await readFile(hba, 'utf8')].join('\n'));
    const settings = ['-c', 'fsync=off', '-c', 'password_encryption=scram-sha-256'];
    if (options.tls) {
      for (const [name, pem] of [
        ['server.crt', options.tls.certPem],
        ['server.key', options.tls.keyPem],
      ] as const) {
        await writeFile(join(data, name), pem, { mode: 0o600 });
        if (owner) await chown(join(data, name), owner.uid, owner.gid);
      }
      settings.push('-c', 'ssl=on', '-c', 'ssl_cert_file=server.crt', '-c', 'ssl_key_file=server.key');
    }

    const port = await freePort();
    const [cmd, args] = asPostgres(join(bin, 'postgres'), [
      '-D',
      data,
      '-p',
      String(port),
      '-k',
      dir,
      '-c',
      'listen_addresses=127.0.0.1',
      ...settings,
    ]);
    child = spawn(cmd, args, { stdio: 'ignore' });

    const exec = async (sql: string): Promise<string> => {
      const [psql, psqlArgs] = asPostgres(join(bin, 'psql'), [
        '-h',
        dir,
        '-p',
        String(port),
        '-U',
        options.user,
        '-d',
        'postgres',
        '-v',
        'ON_ERROR_STOP=1',
        '-tAc',
        sql,
      ]);
      return (await run(psql, psqlArgs)).stdout;
    };
    await waitFor('postgres to accept connections', async () => (await exec('SELECT 1')).trim() === '1', 30_000);
    await exec(`CREATE DATABASE ${quoteIdent(options.database)}`);
    return { host: '127.0.0.1', port, exec, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * Starts MariaDB: a fresh data directory, TCP on 127.0.0.1 only (no name
 * resolution, so accounts are matched by IP), root over the unix socket for
 * `exec`, and `user`@127.0.0.1 identified by `password` with all rights on `database`.
 */
export async function startMariadb(options: DatabaseOptions): Promise<DatabaseServer> {
  const dir = await mkdtemp(join(tmpdir(), 'atoll-mariadb-'));
  const data = join(dir, 'data');
  const socket = join(dir, 'mariadb.sock');
  let child: ChildProcess | undefined;

  const stop = async (): Promise<void> => {
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child!.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child?.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };

  try {
    await run('mariadb-install-db', [
      '--no-defaults',
      `--datadir=${data}`,
      '--user=root',
      '--auth-root-authentication-method=socket',
      '--skip-test-db',
    ]);
    const serverArgs = [
      '--no-defaults',
      `--datadir=${data}`,
      '--user=root',
      '--bind-address=127.0.0.1',
      `--socket=${socket}`,
      `--pid-file=${join(dir, 'mariadbd.pid')}`,
      `--log-error=${join(dir, 'error.log')}`,
      '--skip-name-resolve',
      '--skip-log-bin',
      '--innodb-buffer-pool-size=16M',
      '--skip-grant-tables=0',
    ];
    if (options.tls) {
      await writeFile(join(dir, 'server.crt'), options.tls.certPem);
      await writeFile(join(dir, 'server.key'), options.tls.keyPem, { mode: 0o600 });
      serverArgs.push(`--ssl-cert=${join(dir, 'server.crt')}`, `--ssl-key=${join(dir, 'server.key')}`);
    }
    const port = await freePort();
    requireTool('mariadbd');
    child = spawn('mariadbd', [...serverArgs, `--port=${port}`], { stdio: 'ignore' });

    const exec = async (sql: string): Promise<string> =>
      (await run('mariadb', ['--no-defaults', `--socket=${socket}`, '-uroot', '-N', '-B', '-e', sql])).stdout;
    await waitFor('mariadb to accept connections', async () => (await exec('SELECT 1')).trim() === '1', 30_000);
    const user = `${quoteLiteral(options.user)}@'127.0.0.1'`;
    await exec(
      [
        `CREATE DATABASE ${'`'}${options.database.replace(/`/g, '``')}${'`'}`,
        `CREATE USER ${user} IDENTIFIED BY ${quoteLiteral(options.password)}`,
        `GRANT ALL ON ${'`'}${options.database.replace(/`/g, '``')}${'`'}.* TO ${user}`,
      ].join('; '),
    );
    return { host: '127.0.0.1', port, exec, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
