// End-to-end on the real test node: the other researchers on the cluster. A second researcher
// ("neighbour", uid 1235) shares the lab group and its setgid project directory (/project/lab, 2770)
// with the researcher whose sessions are attacked. Every case is a real Slurm job running the generated
// app in real Apptainer; JupyterLab is reached with the official Jupyter client. SECURITY.md, "The
// neighbours", lists each defence with the case here that proves it.
// Start the node first: bash test/node/build.sh && bash test/node/start.sh
import t from 'tap';
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { createServer } from 'node:https';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp, planFromPresets } from '../../src/build.js';
import { renderApp } from '../../src/render/render.js';
import { doctorProgram, pullProgram } from '../../src/render/job-scripts.js';
import { cliPath, repoRoot } from '../support/presets.js';
import { inNode, NODE_NOT_RUNNING, nodeStatus, requireOrExit, TestNode } from './support/node.js';
import { suitePresetsWith, launchOne, outputLog, runningLogin, stageLaunches, stopSession, waitFor, type Session } from './support/session.js';
import { kernelSpecs, runInKernel } from './support/jupyter.js';
import { registryAvailable, startRegistry, unpackImage } from './support/registry.js';

const found = await nodeStatus();
requireOrExit(t, found ? null : NODE_NOT_RUNNING, 'the end-to-end suite');
const status = found!;
const node = new TestNode(status);
const home = status.home;
const hostHome = node.hostPath(home);
const lab = status.lab.dir;
const shared = `${lab}/shared`;
const canaries = `${lab}/canaries`;

const work = await mkdtemp(join(tmpdir(), 'ood-jupyter-neighbours-'));
t.teardown(() => rm(work, { recursive: true, force: true }));

/** A command as the neighbour (their own account and groups), in their home. */
const asNeighbour = (script: string, timeout = 60_000) => inNode(['bash', '-c', script], { neighbour: true, timeout });
const asResearcher = (script: string, timeout = 60_000) => inNode(['bash', '-c', script], { timeout });

const presetsWith = (name: string, extra: string, files: Record<string, string> = {}) => suitePresetsWith(work, name, extra, files);
async function appFrom(presets: string, name: string): Promise<string> {
  const app = join(work, name, 'jupyter-apptainer');
  await buildApp(presets, app);
  return app;
}

const form = (overrides: Record<string, string> = {}) => ({
  slurm_partition: 'cpu', container: 'jupyterlab', num_gpus: '0', num_cores: '1', memory_gb: '1', bc_num_hours: '1',
  working_dir: '', extra_binds: '', ...overrides,
});

const launch = (app: string, values: Record<string, string>) => launchOne(t, node, app, values);
const running = (session: Session) => runningLogin(node, session);
const errorLines = (log: string) => log.split('\n').filter((l) => l.includes('ERROR'));

/** What ran of the neighbour's planted code: each planted module appends its name to a file here. */
async function canaryLines(): Promise<string[]> {
  const result = await asNeighbour(`cat ${canaries}/* 2>/dev/null || true`);
  return result.stdout.split('\n').filter(Boolean);
}

/**
 * The neighbour plants Python modules in DIR of the lab's project directory: each, when imported,
 * notes who imported it (in canaries/, which the lab group can write) and claims to be what the probe
 * looks for.
 */
async function plant(dir: string, modules: string[]): Promise<void> {
  const code = [
    'import os',
    `open(os.path.join(${JSON.stringify(canaries)}, "ran"), "a").write("%s imported by uid %d\\n" % (__name__, os.getuid()))`,
    'print("executable=/planted/by/the/neighbour")',
    '__version__ = "666"',
  ].join('\n');
  const files = modules.map((m) => (m.endsWith('/') ? `${m}__init__.py` : `${m}.py`));
  const script = [
    'set -e', 'umask 002',
    `mkdir -p ${dir} ${canaries}`, `chmod 2770 ${dir} ${canaries}`,
    ...modules.filter((m) => m.endsWith('/')).map((m) => `mkdir -p ${dir}/${m}`),
    ...files.map((f) => `cat >${dir}/${f} <<'PY'\n${code}\nPY`),
  ].join('\n');
  const result = await asNeighbour(script);
  if (result.exitCode !== 0) throw new Error(`planting in ${dir}: ${result.stderr}`);
}

await asNeighbour(`rm -rf ${shared} ${canaries}`);
t.teardown(() => asNeighbour(`rm -rf ${shared} ${canaries} ${lab}/batch`));
await asNeighbour(`rm -rf ${lab}/batch`);
// In a working directory: what JupyterLab's server imports as it starts (and the kernel before
// ipykernel takes the directory off sys.path). Where a batch job is submitted or staff run doctor:
// what the image probe imports. (Apptainer binds the current directory into the container.)
await plant(shared, ['jupyterlab/', 'jupyter_server/', 'json', 'tornado/', 'traitlets/', 'ipykernel_launcher', 'pathlib']);
const batchDir = `${lab}/batch`;
await plant(batchDir, ['json', 'subprocess', 'sysconfig', 'jupyter_server/', 'jupyterlab/', 'ipykernel/', 'pip']);

const plainApp = await appFrom(join(repoRoot, 'test/e2e/presets'), 'plain');

t.test('a working directory where a lab-mate planted jupyterlab/, json.py and more: nothing of theirs runs, the session works', async (t) => {
  // One of the researcher's environments has a control character in its name: kernel.json and
  // card.json must stay valid JSON (the card would silently lose its facts).
  const made = await asResearcher("apptainer exec /opt/images/jupyterlab.sif python3 -m venv --system-site-packages --without-pip ~/venvs/lab$'\\x01'mate", 120_000);
  t.equal(made.exitCode, 0, made.stderr);
  t.teardown(() => rm(join(hostHome, 'venvs'), { recursive: true, force: true }));

  const session = await launch(plainApp, form({ working_dir: shared }));
  const login = await running(session);
  const log = await outputLog(session);
  t.match(log, new RegExp(`^ood-jupyter: starting JupyterLab from /opt/images/jupyterlab\\.sif on \\S+ in ${shared}$`, 'm'), 'JupyterLab started in the planted directory');
  t.same(errorLines(log), [], 'no error line');
  const result = await runInKernel(login, 'python3', 'import os; print("KERNEL-OK", os.getcwd(), 6 * 7)');
  t.match(result.stdout, new RegExp(`^KERNEL-OK ${shared} 42$`, 'm'), 'a notebook kernel in that directory runs');
  t.same(await canaryLines(), [], 'no planted module was imported: not by JupyterLab, not by the probe, not by the kernel\'s start');

  const specs = await kernelSpecs(login);
  t.ok(Object.values(specs).includes('Python 3.13 (venv: lab\u0001mate)'), `the environment's kernel is offered with its name: ${JSON.stringify(specs)}`);
  for (const kernel of await readdir(join(session.hostRoot, 'jupyter/data/kernels'))) {
    const text = await readFile(join(session.hostRoot, 'jupyter/data/kernels', kernel, 'kernel.json'), 'utf8');
    t.doesNotThrow(() => JSON.parse(text), `${kernel}/kernel.json is valid JSON`);
  }
  const card = JSON.parse(await readFile(join(session.hostRoot, 'jupyter/card.json'), 'utf8')) as { kernels: string[] };
  t.ok(card.kernels.includes('Python 3.13 (venv: lab\u0001mate)'), 'card.json is valid and names it');
  await stopSession(node, session);
});

t.test('anyone on the node can reach JupyterLab\'s port: requests with 16 KB addresses, Referers and Origins do not fill output.log', async (t) => {
  const session = await launch(plainApp, form());
  const login = await running(session);
  const before = (await stat(join(session.hostRoot, 'output.log'))).size;
  // As the neighbour, from the node, 300 rounds without a login: a GET with a 16 KB address and Referer
  // (403), a GET of a 16 KB address that does not exist (404), a POST without the XSRF token (tornado's
  // own 403 line quotes the address), a request with a 16 KB foreign Origin (Jupyter's "Blocking Cross
  // Origin" line quotes it), and a redirect (302).
  const flood = await asNeighbour(`url='${login.baseUrl}'; long=$(head -c 16000 /dev/zero | tr '\\0' A)
    for i in $(seq 300); do
      curl -s -o /dev/null -H "Referer: http://x/$long" "\${url}api/contents/ERROR-$long?i=$i"
      curl -s -o /dev/null "\${url}nothing-$long"
      curl -s -o /dev/null -X POST "\${url}api/contents/$long"
      curl -s -o /dev/null -H "Origin: http://ood-jupyter:$long" "\${url}api/kernels"
      curl -s -o /dev/null "\${url}api/status/"
    done; echo sent`, 600_000);
  t.match(flood.stdout, /sent/, flood.stderr);
  const grown = (await stat(join(session.hostRoot, 'output.log'))).size - before;
  t.ok(grown < 32_768, `1500 requests without a login (16 KB addresses, Referers, Origins) added ${grown} bytes to output.log (unbounded, each added 0.1 to 32 KB)`);
  const log = await outputLog(session);
  t.ok(log.split('\n').every((line) => line.length <= 600), 'no line longer than 600 characters');
  const after = await runInKernel(login, 'python3', 'print("STILL-OK")');
  t.match(after.stdout, /STILL-OK/, 'the session still works');
  await stopSession(node, session);
});

t.test('a batch job submitted from the planted directory, and doctor run there: the probe imports nothing of the neighbour\'s', async (t) => {
  await rm(join(hostHome, '.cache/ood-jupyter/probes'), { recursive: true, force: true });
  const script = await execa('node', [cliPath, 'batch-script', '--presets', join(repoRoot, 'test/e2e/presets'), '--partition', 'cpu',
    '--container', 'jupyterlab', '--mem', '1', '--hours', '1', '--', 'python3', '-I', '-c', 'print("BATCH-OK")']);
  const output = `${home}/neighbours-batch.out`;
  await rm(node.hostPath(output), { force: true });
  const jobId = await node.sbatch([`--chdir=${batchDir}`, `--output=${output}`], script.stdout);
  t.teardown(() => node.scancel(jobId));
  const text = await waitFor('the batch job\'s output', async () => {
    const out = existsSync(node.hostPath(output)) ? await readFile(node.hostPath(output), 'utf8') : '';
    return /BATCH-OK|ERROR|rror/.test(out) ? out : null;
  }, 180_000, 250);
  t.match(text, /^BATCH-OK$/m, `the job ran:\n${text}`);
  t.match(text, /checked what the image \/opt\/images\/jupyterlab\.sif contains/, 'the image was probed in that directory');
  const probes = await readdir(join(hostHome, '.cache/ood-jupyter/probes'));
  const answer = await readFile(join(hostHome, '.cache/ood-jupyter/probes', probes[0]!), 'utf8');
  t.match(answer, /^executable=\/usr\/bin\/python3(\.\d+)?$/m, `the remembered answer names the image's Python:\n${answer}`);
  t.match(answer, /^jupyter_server=2\./m);

  const plan = await planFromPresets(join(repoRoot, 'test/e2e/presets'));
  const checked = await inNode(['bash', '-c', `cd ${batchDir} && bash --norc --noprofile -s`], { input: doctorProgram(plan, await renderApp(plan)), timeout: 180_000 });
  t.match(checked.stdout, /^ok\timage jupyterlab \(\/opt\/images\/jupyterlab\.sif\)\tPython 3\.13\.\d+, Jupyter Server 2\./m, `doctor probed the image from the planted directory:\n${checked.stdout}`);
  t.same(await canaryLines(), [], 'no planted module was imported');
});

t.test('a site image cache others can write (1777), with a planted image under a curated tag\'s digest and a neighbour\'s locks', { skip: !registryAvailable() && process.env.CI !== 'true' ? 'docker-registry, umoci or skopeo missing' : false }, async (t) => {
  const registry = await startRegistry(node);
  t.teardown(() => registry.stop());
  const rootfs = join(work, 'rootfs');
  await mkdir(rootfs);
  await unpackImage(node, '/opt/images/python3-only.sif', rootfs);
  await writeFile(join(rootfs, 'etc/ood-image-version'), 'curated\n');
  const digest = await registry.push(rootfs, 'lab/python3:latest');
  const hex = digest.slice('sha256:'.length);
  const uri = `docker://${registry.address}/lab/python3:latest`;

  // A careless site: the cache is 1777. The neighbour learns the tag's digest (a public request) and
  // plants another image under its name, with a tags/ file, a lock file of their own for the digest
  // and a lock they hold.
  const cache = '/srv/ood-cache';
  await inNode(['bash', '-c', `rm -rf ${cache} && install -d -m 1777 ${cache}`], { root: true });
  t.teardown(() => inNode(['rm', '-rf', cache], { root: true }));
  const planted = await asNeighbour([
    'set -e',
    `cp /opt/images/jupyter-server-1.sif ${cache}/${hex}.sif`,
    `mkdir -p -m 0777 ${cache}/tags ${cache}/.locks`,
    `printf '%s 2026-01-01\\n' ${digest} >${cache}/tags/anything`,
    `(umask 077 && : >${cache}/.locks/${hex})`,
    `: >${cache}/.locks/held && chmod 0666 ${cache}/.locks/held`,
    `setsid flock ${cache}/.locks/held sleep 600 </dev/null >/dev/null 2>&1 &`,
    'echo planted',
  ].join('\n'));
  t.match(planted.stdout, /planted/, planted.stderr);
  t.teardown(() => asNeighbour('pkill -u neighbour flock || true'));

  const presets = await presetsWith('open-cache', `images:\n  cacheDir: ${cache}\npython:\n  overlays: /opt/ood-jupyter/overlays\n`, {
    'containers/registry.yml': `label: From the registry\nimage: ${uri}\njupyterlab: false\n`,
  });
  const app = await appFrom(presets, 'open-cache');
  await rm(join(hostHome, '.cache/ood-jupyter/images'), { recursive: true, force: true });
  const started = Date.now();
  const session = await launch(app, form({ container: 'registry' }));
  const login = await running(session);
  const log = await outputLog(session);
  t.ok(Date.now() - started < 180_000, `the neighbour's locks did not stall the start (${Date.now() - started} ms)`);
  t.equal(log.match(/^ood-jupyter: not using the site image cache .*$/gm)?.join('\n'),
    `ood-jupyter: not using the site image cache ${cache}: ${cache} can be changed by others (mode 1777). Using your own cache instead; please tell your support team.`, 'one line says why');
  const own = `${home}/.cache/ood-jupyter/images`;
  t.match(log, new RegExp(`^ood-jupyter: pulling ${uri.replace(/[.]/g, '\\.')} into ${own} `, 'm'), 'the image is pulled into the researcher\'s own cache');
  t.match(log, new RegExp(`^ood-jupyter: starting JupyterLab from ${own}/${hex}\\.sif `, 'm'), 'and run from there');
  const inside = await runInKernel(login, 'python3', 'import sys; print(open("/etc/ood-image-version").read().strip(), sys.version.split()[0])');
  t.match(inside.stdout, /^curated 3\.13\./, `the kernel runs in the curated image, not the planted one (${inside.stdout.trim()})`);
  t.equal(await inNode(['stat', '-c', '%U %a', `${cache}/${hex}.sif`]).then((r) => r.stdout.trim()), 'neighbour 644', 'the session wrote nothing into the site cache');
  await stopSession(node, session);

  // doctor fails the cache and says what mode it should have; pull refuses to fill it.
  const plan = await planFromPresets(presets);
  const files = await renderApp(plan);
  const doctor = await inNode(['bash', '--norc', '--noprofile', '-s'], { input: doctorProgram(plan, files), timeout: 180_000 });
  t.match(doctor.stdout, new RegExp(`^fail\timage cache ${cache}\t${cache} can be changed by others \\(mode 1777\\): researchers could put files in it that every session trusts\\. .*\\(chmod 0755 ${cache}\\)$`, 'm'), `doctor fails it:\n${doctor.stdout}`);
  const cli = await execa('node', [cliPath, 'doctor', '--presets', presets, '--clusters-dir', work, '--run-with', `bash ${join(repoRoot, 'test/node/exec.sh')} --`], { reject: false });
  t.equal(cli.exitCode, 1, 'ood-jupyter doctor exits 1');
  const pull = await inNode(['bash', '--norc', '--noprofile', '-s'], { input: pullProgram(plan, files).script, timeout: 180_000 });
  t.not(pull.exitCode, 0);
  t.match(pull.stdout, new RegExp(`^ood-jupyter: ERROR: the site image cache ${cache} is not safe to fill: ${cache} can be changed by others \\(mode 1777\\)\\.`, 'm'), `pull refuses:\n${pull.stdout}`);
  t.notMatch(pull.stdout, /registry: .* is /, 'and reports no planted file as the curated image');
});

t.test('a registry whose 401 names realm="-K…" or "file://…" (a server of the test\'s, behind the suite\'s TLS): refused with one line, nothing read or written', { skip: !registryAvailable() && process.env.CI !== 'true' ? 'docker-registry, umoci or skopeo missing' : false }, async (t) => {
  const registry = await startRegistry(node);
  t.teardown(() => registry.stop());
  const requests: string[] = [];
  let realm = '';
  const server = createServer({ key: await readFile(registry.tls.key), cert: await readFile(registry.tls.cert) }, (req, res) => {
    requests.push(`${req.method} ${req.url} ${req.headers.authorization ?? ''}`);
    if (req.url?.startsWith('/v2/')) res.writeHead(401, { 'WWW-Authenticate': `Bearer realm="${realm}",service="x",scope="repository:lab/x:pull"` });
    else res.writeHead(200, { 'Content-Type': 'application/json' }).write('{"token": "from-the-server"}');
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  const port = (server.address() as { port: number }).port;
  // What the realms would make curl read, in the researcher's home: a curl config that fetches a URL of
  // the server's into a file, and a file whose "token" would then go to the registry.
  await writeFile(join(hostHome, 'curl-config'), `url = "https://localhost:${port}/read-the-config"\noutput = "${home}/curl-wrote-this"\n`);
  await writeFile(join(hostHome, 'secret.json'), '{"token": "SECRET-OF-THE-RESEARCHER"}');
  await node.chownToUser(`${home}/curl-config`);
  await node.chownToUser(`${home}/secret.json`);
  t.teardown(() => Promise.all(['curl-config', 'secret.json', 'curl-wrote-this'].map((f) => rm(join(hostHome, f), { force: true }))));
  for (const hostile of [`-K${home}/curl-config`, `file://${home}/secret.json`]) {
    realm = hostile;
    requests.length = 0;
    const session = await launch(plainApp, form({ container: 'custom', custom_image: `docker://localhost:${port}/lab/x:latest` }));
    await waitFor('the job to end', async () => (await node.jobState(session.jobId)) === '', 120_000, 250);
    const log = await outputLog(session);
    t.same(errorLines(log), [`ood-jupyter: ERROR: the registry refused the image docker://localhost:${port}/lab/x:latest (its sign-in service is not an https:// address). Check the name and tag, and launch again.`], `realm ${hostile}: one line`);
    t.same(requests, ['HEAD /v2/lab/x/manifests/latest '], 'the server saw the manifest request alone');
    t.notOk(existsSync(join(hostHome, 'curl-wrote-this')), 'curl wrote no file');
  }
});

t.test('a digest that is a path is refused before anything is submitted', async (t) => {
  const [staged] = await stageLaunches(node, plainApp, [form({ container: 'custom', custom_image: 'docker://localhost:5000/lab/x@sha256:../../../home/neighbour/evil' })]);
  t.notOk(staged!.launch.ok, 'submit.yml.erb refuses it');
  t.match(String(staged!.launch.error), /docker:\/\/ URI/, `with the form's sentence: ${staged!.launch.error}`);
});

t.test('the neighbour cannot reach into the researcher\'s caches, packages or sessions', async (t) => {
  const tries = await asNeighbour([
    `for d in ${home} ${home}/.cache/ood-jupyter ${home}/.local/share/ood-jupyter; do`,
    '  if : >"$d/planted" 2>/dev/null; then echo "WROTE $d"; else echo "refused $d"; fi',
    'done',
  ].join('\n'));
  t.notMatch(tries.stdout, /WROTE/, tries.stdout);
  const modes = await inNode(['stat', '-c', '%a %n', `${home}/.cache/ood-jupyter`, `${home}/.local/share/ood-jupyter`]);
  t.match(modes.stdout, /^700 .*\.cache\/ood-jupyter\n700 .*\.local\/share\/ood-jupyter$/, `the app's own directories are 0700:\n${modes.stdout}`);
});
