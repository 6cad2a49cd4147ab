// End-to-end on the real test node (test/node/): the generated app launched as Open OnDemand launches it,
// on real Slurm, in real Apptainer, with a real JupyterLab reached through its base URL by the official
// Jupyter client. Start the node first: bash test/node/build.sh && bash test/node/start.sh
import t from 'tap';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from '../../src/build.js';
import { repoRoot } from '../support/presets.js';
import { rubyDescription } from '../support/ruby.js';
import { inNode, NODE_NOT_RUNNING, nodeStatus, requireOrExit, TestNode } from './support/node.js';
import { connection, outputLog, stageLaunches, submit, waitFor, type Session } from './support/session.js';
import WebSocket from 'ws';
import { baseUrlOf, cookieHeader, logIn, runInKernel, runInTerminal, startKernel } from './support/jupyter.js';

const found = await nodeStatus();
requireOrExit(t, found ? null : NODE_NOT_RUNNING, 'the end-to-end suite');
const status = found!;
const node = new TestNode(status);
t.comment(`test node: ${status.rootfs}; Ruby for ERB: ${await rubyDescription()}`);

const appParent = await mkdtemp(join(tmpdir(), 'ood-jupyter-e2e-'));
const appDir = join(appParent, 'jupyter-apptainer');
await buildApp(join(repoRoot, 'test/e2e/presets'), appDir);
t.teardown(() => rm(appParent, { recursive: true, force: true }));

// A working directory whose name would run a command if any value were pasted into bash unquoted.
const canary = join(status.home, 'CANARY');
/** The first of test/e2e/presets/site.yml's portal.origins. */
const PORTAL_ORIGIN = 'http://127.0.0.1:18080';
const workDir = join(status.home, `work dir "q" 'x' $(touch ${canary}) \`touch ${canary}\``);
await mkdir(node.hostPath(workDir), { recursive: true });
await node.chownToUser(workDir);

const form = (overrides: Record<string, string> = {}) => ({
  slurm_partition: 'gpu', container: 'jupyterlab', num_gpus: '1', num_cores: '1', memory_gb: '1', bc_num_hours: '1',
  working_dir: workDir, extra_binds: '', ...overrides,
});

const PROBE = [
  'import json, os',
  'print(json.dumps({"singularity_d": os.path.isdir("/.singularity.d"), "apptainer": os.environ.get("APPTAINER_CONTAINER", ""),',
  '  "job": os.environ.get("SLURM_JOB_ID", ""), "cuda": os.environ.get("CUDA_VISIBLE_DEVICES", ""), "cwd": os.getcwd(),',
  '  "gpus": sorted(d for d in os.listdir("/dev") if d.startswith("nvidia")),',
  '  "extras": [os.environ.get(k, "") for k in ("OOD_TEST_CONTAINER_VAR", "OOD_TEST_SETUP_RAN", "OOD_TEST_GPU_SETUP_RAN")],',
  '  "bound": os.path.exists("/mnt/site-images/jupyterlab.sif")}))',
].join('\n');

async function running(session: Session) {
  const log = () => outputLog(session);
  const ran = await waitFor('the job to run', async () => (await node.jobState(session.jobId)) === 'R', 60_000)
    .then(() => Date.now()).catch(async (e) => { throw new Error(`${e.message}\n${await log()}`); });
  const conn = await waitFor('connection.yml', () => connection(session), 120_000)
    .catch(async (e) => { throw new Error(`${e.message}\noutput.log:\n${await log()}`); });
  const connected = Date.now();
  return { ran, conn, connected };
}

t.test('a GPU session: JupyterLab in Apptainer in the Slurm job, in the chosen directory', async (t) => {
  const [staged] = await stageLaunches(node, appDir, [form()]);
  const session = await submit(node, staged!);
  t.teardown(() => node.scancel(session.jobId));
  const { ran, conn, connected } = await running(session);

  const answering = await waitFor('JupyterLab to answer over HTTP', async () => {
    const response = await fetch(`${baseUrlOf(conn)}login`).catch(() => null);
    return response?.status === 200 ? Date.now() : null;
  }, 30_000);

  const login = await logIn(conn);
  t.equal(login.status, 302, 'the Connect button\'s password POST (no XSRF token) is accepted');
  t.equal(login.location, `/node/${conn.host}/${conn.port}/lab`, 'and lands in JupyterLab');
  const kernelStart = Date.now();
  const result = await runInKernel(login, 'python3', PROBE);
  const replied = Date.now();
  const facts = JSON.parse(result.stdout.trim()) as Record<string, unknown>;
  t.equal(result.displayName, 'Python 3 (Debian JupyterLab)', 'the session\'s own kernelspec');
  t.equal(facts.singularity_d, true, 'code runs inside the container (/.singularity.d)');
  t.not(facts.apptainer, '', `APPTAINER_CONTAINER=${facts.apptainer}`);
  t.equal(facts.job, session.jobId, 'inside the Slurm job (SLURM_JOB_ID)');
  t.match(String(facts.cuda), /^[01]$/, `with the GPU Slurm assigned (CUDA_VISIBLE_DEVICES=${facts.cuda})`);
  t.ok((facts.gpus as string[]).includes('nvidia0'), '--nv: the node\'s GPU devices are visible in the container');
  t.equal(facts.cwd, workDir, 'in the chosen working directory (spaces, quotes and $(…) in its name)');
  t.notOk(existsSync(node.hostPath(canary)), 'the hostile directory name ran nothing');
  t.same(facts.extras, ['a b,c "d"', 'yes', 'yes'], 'the container preset\'s env, setup and gpuSetup reached the kernel');
  t.equal(facts.bound, true, 'and its bind /opt/images:/mnt/site-images:ro');

  const anonymous = await fetch(`${baseUrlOf(conn)}api/kernels`);
  t.equal(anonymous.status, 403, 'no password: 403');
  const wrong = await logIn(conn, 'not-the-password');
  t.equal(wrong.status, 401, 'a wrong password is refused');
  const noXsrf = await fetch(`${baseUrlOf(conn)}api/kernels`, { method: 'POST', headers: { Cookie: cookieHeader(login) }, body: '{}' });
  t.equal(noXsrf.status, 403, 'XSRF stays on: a cookie-authenticated API POST without the token is refused');

  // Origins: here the Host is 127.0.0.1:PORT, as behind a portal that does not preserve Host, so only
  // the presets' portal.origins may send browser requests; a page of any other site may not.
  const asBrowser = (origin: string) => ({ Cookie: cookieHeader(login), 'X-XSRFToken': login.cookies.get('_xsrf') ?? '', Origin: origin });
  const foreign = 'https://attacker.example';
  const fromPortal = await fetch(`${baseUrlOf(conn)}api/kernels`, { headers: asBrowser(PORTAL_ORIGIN) });
  t.equal(fromPortal.status, 200, `an API request with the portal's Origin (${PORTAL_ORIGIN}) is served`);
  const fromElsewhere = await fetch(`${baseUrlOf(conn)}api/kernels`, { method: 'POST', headers: asBrowser(foreign), body: JSON.stringify({ name: 'python3' }) });
  t.ok([403, 404].includes(fromElsewhere.status), `a logged-in API POST with XSRF token but Origin ${foreign} is refused (${fromElsewhere.status})`);
  const kernelId = await startKernel(login);
  const channels = `${baseUrlOf(conn).replace(/^http/, 'ws')}api/kernels/${kernelId}/channels`;
  const upgrade = (origin: string) => new Promise<string>((resolve) => {
    const ws = new WebSocket(channels, { headers: { Cookie: cookieHeader(login), Origin: origin } });
    ws.on('open', () => { ws.close(); resolve('open'); });
    ws.on('unexpected-response', (_req, res) => { resolve(`HTTP ${res.statusCode}`); ws.terminate(); });
    ws.on('error', (error) => resolve(`error ${error.message}`));
  });
  t.equal(await upgrade(PORTAL_ORIGIN), 'open', 'the kernel\'s websocket opens from the portal\'s origin');
  t.match(await upgrade(foreign), /^HTTP 40[34]$/, `and is refused from ${foreign}`);
  t.equal((await fetch(`${baseUrlOf(conn)}api/kernels`, { headers: asBrowser(PORTAL_ORIGIN) }).then((r) => r.json() as Promise<unknown[]>)).length, 1,
    'the refused POST started no kernel (only the one started from the portal runs)');

  // The Connect path: JupyterLab's page and files come compressed where the browser asks for it, and
  // the page asks for no bundle build check (GET lab/api/build would start node and jlpm).
  const page = await fetch(`${baseUrlOf(conn)}lab`, { headers: { Cookie: cookieHeader(login), 'Accept-Encoding': 'gzip' } });
  const html = await page.text();
  t.equal(page.headers.get('content-encoding'), 'gzip', 'the lab page is sent compressed');
  const pageConfig = JSON.parse(/<script id="jupyter-config-data" type="application\/json">([\s\S]*?)<\/script>/.exec(html)?.[1] ?? '{}') as Record<string, unknown>;
  t.same([pageConfig.buildCheck, pageConfig.buildAvailable], [false, false], 'no bundle build check on Connect');
  const script = /src="([^"]+\.js[^"]*)"/.exec(html)?.[1];
  const bundle = await fetch(new URL(script!, `${baseUrlOf(conn)}lab`), { headers: { Cookie: cookieHeader(login), 'Accept-Encoding': 'gzip' } });
  const compressed = Number(bundle.headers.get('content-length') ?? (await bundle.clone().arrayBuffer()).byteLength);
  const plain = (await (await fetch(new URL(script!, `${baseUrlOf(conn)}lab`), { headers: { Cookie: cookieHeader(login), 'Accept-Encoding': 'identity' } })).arrayBuffer()).byteLength;
  t.equal(bundle.headers.get('content-encoding'), 'gzip', `JupyterLab's scripts are sent compressed (${script}: ${compressed} bytes instead of ${plain})`);

  const processes = await node.userProcesses();
  t.notOk(processes.some((p) => p.includes(conn.password)), 'the password is on no command line in the node');
  t.notMatch(await outputLog(session), conn.password, 'nor in output.log');
  t.equal((await stat(join(session.hostRoot, 'jupyter/config/jupyter_server_config.py'))).mode & 0o777, 0o600, 'config 0600');
  t.equal((await stat(join(session.hostRoot, 'connection.yml'))).mode & 0o777, 0o600, 'connection.yml 0600');

  t.comment([
    'timings (ms):',
    `sbatch → job running ${ran - session.submittedAt}`,
    `→ connection.yml ${connected - ran}`,
    `→ JupyterLab answering ${answering - connected}`,
    `→ first kernel reply ${replied - kernelStart} (kernel start + execute)`,
    `total sbatch → first kernel reply ${replied - session.submittedAt}`,
  ].join(' '));

  await t.test('scancel ends the job and JupyterLab with it', async (t) => {
    await node.scancel(session.jobId);
    await waitFor('the job to leave the queue', async () => (await node.jobState(session.jobId)) === '', 60_000);
    await waitFor('JupyterLab to stop', async () => !(await node.userProcesses()).some((p) => p.includes(session.nodeRoot)), 30_000);
    t.pass('no process of the session is left');
    const gone = await fetch(`${baseUrlOf(conn)}login`).then(() => 'answering', () => 'refused');
    t.equal(gone, 'refused', 'its port no longer answers');
  });
});

t.test('the python3-only image on a site with no overlay and no per-user installs: one clear line, and a definition file', async (t) => {
  const [staged] = await stageLaunches(node, appDir, [form({ container: 'python3-only', slurm_partition: 'cpu', num_gpus: '0' })]);
  const session = await submit(node, staged!);
  t.teardown(() => node.scancel(session.jobId));
  await waitFor('the job to end', async () => (await node.jobState(session.jobId)) === '', 120_000, 500);
  const log = await outputLog(session);
  const errors = log.split('\n').filter((l) => l.includes('ERROR'));
  t.same(errors.length, 1, `exactly one error line:\n${log}`);
  const definition = join(staged!.nodeRoot, 'jupyterlab-image.def');
  t.equal(errors[0], `ood-jupyter: ERROR: the image /opt/images/python3-only.sif lacks JupyterLab and ipykernel for its Python 3.13, and this site has no JupyterLab for that Python. A definition file for the same image with them is at ${definition}: build it with "apptainer build jupyterlab.sif ${definition}" on a machine with network and launch that image, or ask your support team.`);
  const def = await readFile(node.hostPath(definition), 'utf8');
  t.match(def, /^Bootstrap: localimage\nFrom: \/opt\/images\/python3-only\.sif\n\n%post\n    python3 -m pip install --no-cache-dir jupyterlab ipykernel\n/m, `the definition file builds on the image:\n${def}`);
  t.notOk(existsSync(join(session.hostRoot, 'connection.yml')), 'the session never claims to be running');
});

t.test('a request above the partition\'s limits never reaches sbatch', async (t) => {
  const before = await node.userJobs();
  const refused = await stageLaunches(node, appDir, [form({ num_gpus: '3' }), form({ slurm_partition: 'cpu', num_gpus: '1' }), form({ memory_gb: '100' })]);
  const messages = refused.map((r) => r.launch.error);
  t.same(refused.map((r) => r.launch.ok), [false, false, false]);
  t.match(messages[0], /^GPUs on the GPU \(test node\) partition must be between 1 and 2; you asked for 3\.$/);
  t.match(messages[1], /^The CPU \(test node\) partition has no GPUs/);
  t.match(messages[2], /^Memory \(GB\) on the GPU \(test node\) partition must be between 1 and 6; you asked for 100\.$/);
  t.same(await node.userJobs(), before, 'no job was submitted');
});

t.test('two sessions of the same researcher at once both work', async (t) => {
  const staged = await stageLaunches(node, appDir, [form(), form({ working_dir: '' })]);
  const sessions = await Promise.all(staged.map((s) => submit(node, s)));
  t.teardown(() => Promise.all(sessions.map((s) => node.scancel(s.jobId))));
  const started = await Promise.all(sessions.map((s) => running(s)));
  t.not(started[0]!.conn.port, started[1]!.conn.port, 'separate ports');
  const results = await Promise.all(started.map(async ({ conn }) => {
    const login = await logIn(conn);
    return JSON.parse((await runInKernel(login, 'python3', PROBE)).stdout.trim()) as Record<string, unknown>;
  }));
  t.same(results.map((r) => r.job), sessions.map((s) => s.jobId), 'each kernel runs in its own job');
  t.same(results.map((r) => r.cwd), [workDir, status.home], 'each in its own working directory');
  t.not(results[0]!.cuda, results[1]!.cuda, 'each with its own GPU');
});

t.test('a port another process takes after before.sh chose it: JupyterLab starts on another, and connection.yml names that one', async (t) => {
  const [staged] = await stageLaunches(node, appDir, [form({ slurm_partition: 'cpu', num_gpus: '0', working_dir: '' })]);
  const session = await submit(node, staged!);
  t.teardown(() => node.scancel(session.jobId));
  const config = join(session.hostRoot, 'jupyter/config/jupyter_server_config.py');
  // before.sh's choice, read as soon as it is written: JupyterLab's container takes seconds to start.
  const [, ip, chosen] = await waitFor('before.sh to write the Jupyter configuration', async () => {
    const text = existsSync(config) ? await readFile(config, 'utf8') : '';
    return /^c\.ServerApp\.ip = "([^"]+)"\n[^]*?^port = int\(os\.environ\.get\("OOD_JUPYTER_PORT"\) or (\d+)\)$/m.exec(text);
  }, 60_000, 20);
  // Another user's process binds that address and port first (root here), and holds it.
  const squat = 'import socket, sys, time\ns = socket.socket()\ns.bind((sys.argv[1], int(sys.argv[2])))\ns.listen(1)\nprint("taken", flush=True)\ntime.sleep(90)';
  const squatter = inNode(['python3', '-c', squat, ip!, chosen!], { root: true, timeout: 120_000 });
  t.teardown(() => inNode(['pkill', '-f', 'print\\("taken"'], { root: true }));
  const conn = await running(session).then((r) => r.conn);
  void inNode(['pkill', '-f', 'print\\("taken"'], { root: true });
  const squatted = await squatter;
  t.match(squatted.stdout, /taken/, `the other process held ${ip}:${chosen} (${squatted.stderr.trim() || 'bound'})`);
  const log = await outputLog(session);
  t.match(log, new RegExp(`^ood-jupyter: another process took port ${chosen} before JupyterLab could; starting it on another port\\.$`, 'm'));
  t.not(conn.port, Number(chosen), `connection.yml names the new port (${conn.port})`);
  t.match(log, new RegExp(`^ood-jupyter: JupyterLab is listening on ${conn.host}:${conn.port}$`, 'm'));
  t.notMatch(log, /ood-jupyter: ERROR/);
  const login = await logIn(conn);
  const reply = await runInKernel(login, 'python3', 'print(6 * 7)');
  t.equal(reply.stdout.trim(), '42', 'a kernel answers behind the new port and its base URL');
});

t.test('an image with Jupyter Server 1.x: one line naming what is needed, in seconds, not after the start timeout', async (t) => {
  const [staged] = await stageLaunches(node, appDir, [form({ container: 'jupyter-server-1', slurm_partition: 'cpu', num_gpus: '0' })]);
  const session = await submit(node, staged!);
  t.teardown(() => node.scancel(session.jobId));
  await waitFor('the job to end', async () => (await node.jobState(session.jobId)) === '', 120_000, 250);
  const seconds = (Date.now() - session.submittedAt) / 1000;
  const log = await outputLog(session);
  const errors = log.split('\n').filter((l) => l.includes('ERROR'));
  t.same(errors.length, 1, `exactly one error line:\n${log}`);
  t.match(errors[0], /^ood-jupyter: ERROR: the image \/opt\/images\/jupyter-server-1\.sif lacks Jupyter Server 2 \(it has 1\.23\.\d+\) and JupyterLab for its Python 3\.11/);
  t.ok(seconds < 30, `the job ended ${seconds.toFixed(1)} s after sbatch (the start timeout is 120 s)`);
  t.comment(`Jupyter Server 1.x image refused ${seconds.toFixed(1)} s after sbatch`);
  t.notOk(existsSync(join(session.hostRoot, 'connection.yml')), 'the session never claims to be running');
});

t.test('a researcher with a tcsh login shell, their own ~/.jupyter config and a broken JupyterLab in ~/.local', async (t) => {
  // The same app on a site whose set-up loads the runtime with `module`, defined for bash in /etc/profile.d.
  const presets = join(appParent, 'presets-module');
  await cp(join(repoRoot, 'test/e2e/presets'), presets, { recursive: true });
  const siteFile = join(presets, 'site.yml');
  await writeFile(siteFile, (await readFile(siteFile, 'utf8')).replace('  command: apptainer\n', '  command: apptainer\n  setup:\n    - module load apptainer\n'));
  const moduleApp = join(appParent, 'module-app', 'jupyter-apptainer');
  await buildApp(presets, moduleApp);

  const home = status.home;
  const userFiles = {
    // Keys the session does not set would apply from here: TLS behind an HTTP proxy, another root, another port.
    '.jupyter/jupyter_server_config.py': 'c.ServerApp.certfile = "/nonexistent/cert.pem"\nc.ServerApp.keyfile = "/nonexistent/key.pem"\nc.ServerApp.port = 9999\nc.ServerApp.root_dir = "/nonexistent"\n',
    '.jupyter/jupyter_lab_config.py': 'c.ServerApp.root_dir = "/nonexistent"\n',
    // A broken JupyterLab in the researcher's user site-packages, which python3 would import first.
    '.local/lib/python3.13/site-packages/jupyterlab/__init__.py': 'raise ImportError("a broken jupyterlab in ~/.local")\n',
  };
  for (const [path, text] of Object.entries(userFiles)) {
    await mkdir(join(node.hostPath(home), path, '..'), { recursive: true });
    await writeFile(join(node.hostPath(home), path), text);
  }
  await node.chownToUser(join(home, '.jupyter'));
  await node.chownToUser(join(home, '.local'));
  const chsh = await inNode(['usermod', '-s', '/bin/tcsh', status.user], { root: true });
  t.equal(chsh.exitCode, 0, `login shell set to tcsh ${chsh.stderr}`);
  t.teardown(async () => {
    await inNode(['usermod', '-s', '/bin/bash', status.user], { root: true });
    await rm(join(node.hostPath(home), '.jupyter'), { recursive: true, force: true });
    await rm(join(node.hostPath(home), '.local/lib'), { recursive: true, force: true });
  });

  const [staged] = await stageLaunches(node, moduleApp, [form({ working_dir: '' })]);
  const session = await submit(node, staged!);
  t.teardown(() => node.scancel(session.jobId));
  const { conn } = await running(session);
  const log = await outputLog(session);
  t.notMatch(log, /ERROR|command not found/, `no error in output.log:\n${log}`);
  t.not(conn.port, 9999, 'the session\'s own port, not the one in ~/.jupyter');
  const login = await logIn(conn);
  t.equal(login.status, 302, 'plain HTTP login works (no certfile from ~/.jupyter)');
  const result = await runInKernel(login, 'python3', 'import os, json; print(json.dumps({"cwd": os.getcwd(), "modules": os.environ.get("LOADEDMODULES", ""), "shell": os.environ.get("SHELL", "")}))');
  const facts = JSON.parse(result.stdout.trim()) as Record<string, string>;
  t.equal(facts.cwd, home, 'in the home directory, not ~/.jupyter\'s root_dir');
  t.equal(facts.modules, 'apptainer', 'the site\'s `module load apptainer` ran, though the login shell is tcsh');
  t.equal(facts.shell, '/bin/tcsh', 'the job really has the tcsh login environment');
  const terminal = await runInTerminal(login, 'echo TERM-OK-$((6*7)) $0');
  t.match(terminal, /TERM-OK-42 \S*bash/, 'a terminal opens (bash: the image has no tcsh) and runs a command');
});
