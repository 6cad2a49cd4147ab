// A real portal front end for the end-to-end suite: Debian's Apache httpd configured the way OOD's
// ood-portal-generator configures a portal's `/node/HOST/PORT` location (templates/ood-portal.conf.erb)
// and the way its mod_ood_proxy forwards it (lib/node_proxy.lua, lib/ood/proxy.lua). Written here from
// what those files do. Left out: OOD's user map (the Basic-auth user is the system user here), TLS,
// header and cookie stripping, the maintenance page and the other vhost settings.
//
// - Basic auth in front of everything, as a site without Dex puts its auth lines in every location.
// - <LocationMatch "^/node/(?<host>…)/(?<port>\d+)">: a Lua fixup hands the request to mod_proxy with
//   its FULL path (`proxy:http://HOST:PORT`, or `ws://` when the request has Upgrade), adding
//   X-Forwarded-Proto and X-Forwarded-User; mod_proxy adds X-Forwarded-Host/-For/-Server.
// - Host reaches JupyterLab as HOST:PORT, unless `preserveHost` (OOD sets ProxyPreserveHost On only in
//   its Dex block).
// - Responses: Location loses its scheme and host; Set-Cookie loses Domain and gets Path=/node/HOST/PORT.
// - /pun/sys/dashboard/cards/ serves the session cards the browser test renders, from the same origin.
import { execa, type ResultPromise } from 'execa';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';

export interface Portal {
  /** What the browser sends as Origin: the portal's scheme, host and port. */
  origin: string;
  preserveHost: boolean;
  /** The portal's login (HTTP Basic, like a site without Dex). */
  user: string;
  password: string;
  /** Served at `${origin}/pun/sys/dashboard/cards/`. */
  cardDir: string;
  stop(): Promise<void>;
  /** method, path, status, and the Host header the browser sent. */
  accessLog(): Promise<string>;
}

const APACHE = '/usr/sbin/apache2';
const MODULES = '/usr/lib/apache2/modules';

export const apacheAvailable = () => existsSync(APACHE) && existsSync(join(MODULES, 'mod_lua.so')) && existsSync('/usr/bin/htpasswd');

/** The compute node names the proxy accepts: OOD's host_regex. The test node's jobs run on this machine. */
const hostRegex = () => hostname().replace(/[.]/g, '\\.');

// Our own fixup, doing what mod_ood_proxy's node_proxy_handler does (minus the user map: Basic auth's
// user is the system user here).
const NODE_PROXY_LUA = `-- Written by test/e2e/support/portal.ts: hand /node/HOST/PORT/... to mod_proxy, full path kept.
function node_proxy_handler(r)
  local host = r.subprocess_env['MATCH_HOST']
  local port = r.subprocess_env['MATCH_PORT']
  local scheme = r.headers_in['Upgrade'] and 'ws://' or 'http://'
  r.handler = 'proxy:' .. scheme .. host .. ':' .. port
  r.filename = r.uri
  r.headers_in['X-Forwarded-Proto'] = r.is_https and 'https' or 'http'
  r.headers_in['X-Forwarded-User'] = r.user or ''
  r:custom_response(503, 'Failed to connect to ' .. host .. ':' .. port)
  return apache2.DECLINED
end
`;

function httpdConf(o: { dir: string; port: number; preserveHost: boolean; cardDir: string }): string {
  const modules = ['mpm_event', 'authn_core', 'authn_file', 'authz_core', 'authz_user', 'auth_basic', 'alias', 'mime',
    'headers', 'proxy', 'proxy_http', 'proxy_wstunnel', 'lua', 'setenvif'];
  const auth = [
    'AuthType Basic',
    'AuthName "ood-jupyter test portal"',
    `AuthUserFile ${o.dir}/htpasswd`,
    'Require valid-user',
  ];
  return [
    '# Written by test/e2e/support/portal.ts for one test run.',
    `ServerRoot ${o.dir}`,
    `PidFile ${o.dir}/httpd.pid`,
    `Mutex file:${o.dir}`,
    `DefaultRuntimeDir ${o.dir}`,
    ...modules.map((m) => `LoadModule ${m}_module ${MODULES}/mod_${m}.so`),
    'User www-data',
    'Group www-data',
    `Listen 127.0.0.1:${o.port}`,
    'ServerName 127.0.0.1',
    `ErrorLog ${o.dir}/error.log`,
    'LogLevel warn lua:info',
    // host-in: the Host the browser sent (what reaches the backend is asserted in test/e2e/portal.test.ts).
    'LogFormat "%m %U%q %>s host-in=%{Host}i" portal',
    `CustomLog ${o.dir}/access.log portal`,
    'TypesConfig /etc/mime.types',
    'Timeout 120',
    '',
    `<VirtualHost 127.0.0.1:${o.port}>`,
    '  ServerName 127.0.0.1',
    // OOD: ProxyPreserveHost On appears only in the Dex block of the vhost.
    ...(o.preserveHost ? ['  ProxyPreserveHost On'] : []),
    '  ProxyRequests Off',
    '',
    '  <Location "/">',
    ...auth.map((l) => `    ${l}`),
    '  </Location>',
    '',
    `  Alias "/pun/sys/dashboard/cards/" "${o.cardDir}/"`,
    `  <Directory "${o.cardDir}">`,
    '    Require valid-user',
    '  </Directory>',
    '',
    `  <LocationMatch "^/node/(?<host>${hostRegex()})/(?<port>\\d+)">`,
    ...auth.map((l) => `    ${l}`),
    '    # ProxyPassReverse, ProxyPassReverseCookieDomain and ProxyPassReverseCookiePath, as OOD writes them.',
    '    Header edit Location "^[^/]+//[^/]+" ""',
    '    Header edit* Set-Cookie ";\\s*(?i)Domain[^;]*" ""',
    '    Header edit* Set-Cookie ";\\s*(?i)Path[^;]*" ""',
    '    Header edit  Set-Cookie "^([^;]+)" "$1; Path=/node/%{MATCH_HOST}e/%{MATCH_PORT}e"',
    `    LuaHookFixups ${o.dir}/node_proxy.lua node_proxy_handler`,
    '  </LocationMatch>',
    '</VirtualHost>',
    '',
  ].join('\n');
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

export async function startPortal(opts: { preserveHost: boolean; port?: number }): Promise<Portal> {
  if (!apacheAvailable()) throw new Error('Apache httpd with mod_lua is not installed (apt-get install apache2 apache2-utils)');
  const port = opts.port ?? (opts.preserveHost ? 18081 : 18080);
  if (await listening(port)) throw new Error(`port ${port} is taken: is another test portal still running?`);
  const dir = await mkdtemp(join(tmpdir(), 'ood-jupyter-portal-'));
  const cardDir = join(dir, 'cards');
  await mkdir(cardDir);
  // Apache's workers run as www-data: they read the cards, the password file and the Lua hook.
  await chmod(dir, 0o755);
  await chmod(cardDir, 0o777);
  const user = 'researcher';
  const password = 'portal-login-secret';
  const htpasswd = await execa('htpasswd', ['-cbB', join(dir, 'htpasswd'), user, password], { reject: false });
  if (htpasswd.exitCode !== 0) throw new Error(`htpasswd: ${htpasswd.stderr}`);
  await chmod(join(dir, 'htpasswd'), 0o644);
  await writeFile(join(dir, 'node_proxy.lua'), NODE_PROXY_LUA, { mode: 0o644 });
  await writeFile(join(dir, 'httpd.conf'), httpdConf({ dir, port, preserveHost: opts.preserveHost, cardDir }));

  const configTest = await execa(APACHE, ['-t', '-f', join(dir, 'httpd.conf')], { reject: false, all: true });
  if (configTest.exitCode !== 0) throw new Error(`apache2 -t refused the portal's config:\n${configTest.all}`);
  const server: ResultPromise = execa(APACHE, ['-DFOREGROUND', '-f', join(dir, 'httpd.conf')], { reject: false, all: true, env: { APACHE_RUN_DIR: dir } });
  const errorLog = async () => (existsSync(join(dir, 'error.log')) ? readFile(join(dir, 'error.log'), 'utf8') : '');
  const deadline = Date.now() + 15_000;
  while (!(await listening(port))) {
    if (server.exitCode !== null || Date.now() > deadline) {
      server.kill();
      const result = await server;
      throw new Error(`the portal did not start on ${port}:\n${result.all}\n${await errorLog()}`);
    }
    await sleep(100);
  }

  return {
    origin: `http://127.0.0.1:${port}`,
    preserveHost: opts.preserveHost,
    user,
    password,
    cardDir,
    accessLog: async () => (existsSync(join(dir, 'access.log')) ? readFile(join(dir, 'access.log'), 'utf8') : ''),
    stop: async () => {
      server.kill('SIGTERM');
      await server;
      for (let i = 0; i < 50 && (await listening(port)); i++) await sleep(100);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
