// Stage 7, security: the session's secret (the password in connection.yml) on the real test node. It is
// in no process's argv, not in the kernel's environment, not in output.log, and in no file another user
// can read; another user of the node (uid 4321, through setpriv) cannot read the session directory,
// the kernel connection files or the Jupyter config, and cannot get into JupyterLab without it.
import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from '../../src/build.js';
import { repoRoot } from '../support/presets.js';
import { inNode, NODE_NOT_RUNNING, nodeStatus, requireOrExit, TestNode } from './support/node.js';
import { connection, outputLog, stageLaunches, submit, waitFor } from './support/session.js';
import { baseUrlOf, logIn, runInKernel } from './support/jupyter.js';

const found = await nodeStatus();
requireOrExit(t, found ? null : NODE_NOT_RUNNING, 'the secret suite');
const node = new TestNode(found!);
const work = await mkdtemp(join(tmpdir(), 'ood-jupyter-secret-'));
t.teardown(() => rm(work, { recursive: true, force: true }));
const appDir = join(work, 'jupyter-apptainer');
await buildApp(join(repoRoot, 'test/e2e/presets'), appDir);

/** A command as another user of the node: uid and gid 4321, no groups. */
const asOther = (script: string) => inNode(['setpriv', '--reuid=4321', '--regid=4321', '--clear-groups', '--', 'sh', '-c', script], { root: true });

t.test('the password stays with the researcher', async (t) => {
  const [staged] = await stageLaunches(node, appDir, [{ slurm_partition: 'cpu', container: 'jupyterlab', num_gpus: '0', num_cores: '1', memory_gb: '1', bc_num_hours: '1', working_dir: '', extra_binds: '' }]);
  const session = await submit(node, staged!);
  t.teardown(() => node.scancel(session.jobId));
  const conn = await waitFor('connection.yml', () => connection(session), 120_000, 250);
  const password = conn.password;
  const login = await logIn(conn);
  t.equal(login.status, 302, 'the researcher gets in with it');
  // A kernel running, so that its connection file and process exist.
  // The kernel prints its whole environment (the password itself typed into a cell would land in
  // IPython's history file).
  const env = await runInKernel(login, 'python3', 'import os\nprint("\\n".join("%s=%s" % kv for kv in os.environ.items()))');
  t.match(env.stdout, /^SLURM_JOB_ID=/m, 'the kernel\'s environment read');
  t.notMatch(env.stdout, password, 'not in the kernel\'s environment');

  const argv = await inNode(['sh', '-c', 'for f in /proc/[0-9]*/cmdline; do tr "\\0" " " <"$f" 2>/dev/null; echo; done'], { root: true });
  t.ok(argv.stdout.split('\n').length > 10, 'every process\'s command line read');
  t.notMatch(argv.stdout, password, 'in no process\'s argv');
  const environ = await inNode(['sh', '-c', 'for f in /proc/[0-9]*/environ; do tr "\\0" "\\n" <"$f" 2>/dev/null; done'], { root: true });
  t.notMatch(environ.stdout, password, 'in no process\'s environment');
  t.notMatch(await outputLog(session), password, 'not in output.log');

  // Files that hold it, and who can read them: only connection.yml, the researcher's alone.
  const holders = await inNode(['grep', '-rlF', password, node.status.home], { root: true });
  const files = holders.stdout.trim().split('\n').filter(Boolean);
  t.same(files.map((f) => f.slice(session.nodeRoot.length + 1)), ['connection.yml'], `only connection.yml holds it (${files.join(', ')})`);
  const modes = await inNode(['stat', '-c', '%a %U %n', ...files, session.nodeRoot, join(session.nodeRoot, 'jupyter/runtime'), join(session.nodeRoot, 'jupyter/config/jupyter_server_config.py')], { root: true });
  for (const line of modes.stdout.trim().split('\n')) t.match(line, /^1?[67]00 researcher /, `private: ${line}`);

  // Another user of the node.
  const snoop = await asOther(`cat ${session.nodeRoot}/connection.yml; ls ${session.nodeRoot}; cat ${session.nodeRoot}/jupyter/runtime/kernel-*.json; cat ${session.nodeRoot}/jupyter/config/jupyter_server_config.py; grep -rlF ${password} ${node.status.home} 2>&1 | grep -v 'Permission denied'; id -u`);
  t.match(snoop.stdout, /^4321$/m, 'the commands ran as uid 4321');
  t.notMatch(snoop.stdout, password, 'another user cannot read the password');
  t.match(snoop.stderr, /connection\.yml: Permission denied/);
  t.match(snoop.stderr, /ls: cannot (open directory|access) .*: Permission denied/, 'nor list the session directory');
  t.match(snoop.stderr, /kernel-\*\.json'?: Permission denied/, 'nor read the kernel connection files');
  t.match(snoop.stderr, /jupyter_server_config\.py: Permission denied/, 'nor the Jupyter config');
  const http = await asOther(`python3 -c "import urllib.request,urllib.error
for path in ('api/kernels', 'api/contents', 'lab'):
    try:
        r = urllib.request.urlopen('http://${conn.host}:${conn.port}/node/${conn.host}/${conn.port}/' + path)
        print(path, r.status, r.geturl().split('/')[-1].split('?')[0])
    except urllib.error.HTTPError as e:
        print(path, e.code)"`);
  t.match(http.stdout, /^api\/kernels 403$/m, 'another user\'s request to the kernels API: 403');
  t.match(http.stdout, /^api\/contents 403$/m, 'to the files: 403');
  t.match(http.stdout, /^lab 200 login$/m, 'the lab page sends them to the login page');
  t.comment(`checked at ${baseUrlOf(conn)}`);
});
