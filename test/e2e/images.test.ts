// End-to-end on the real test node: images that lack JupyterLab, the researcher's own environments and
// packages, and docker:// images pulled from a real registry. Every case is a real Slurm job running
// the generated app in real Apptainer; kernels are driven with the official Jupyter client.
// Start the node first: bash test/node/build.sh && bash test/node/start.sh
import t from 'tap';
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp, planFromPresets } from '../../src/build.js';
import { renderApp } from '../../src/render/render.js';
import { pullProgram } from '../../src/render/job-scripts.js';
import { repoRoot } from '../support/presets.js';
import { inNode, NODE_NOT_RUNNING, nodeStatus, requireOrExit, TestNode } from './support/node.js';
import { suitePresetsWith, launchOne, outputLog, runningLogin, stopSession, waitFor, type Session } from './support/session.js';
import { kernelSpecs, runInKernel, runInTerminal, type Login } from './support/jupyter.js';
import { registryAvailable, startRegistry, unpackImage } from './support/registry.js';

const found = await nodeStatus();
requireOrExit(t, found ? null : NODE_NOT_RUNNING, 'the end-to-end suite');
const status = found!;
const node = new TestNode(status);
const home = status.home;
const hostHome = node.hostPath(home);

const work = await mkdtemp(join(tmpdir(), 'ood-jupyter-images-'));
t.teardown(() => rm(work, { recursive: true, force: true }));

const presetsWith = (name: string, extra: string, files: Record<string, string> = {}) => suitePresetsWith(work, name, extra, files);

/** The app built from presetsWith(NAME, EXTRA, FILES). */
async function appWith(name: string, extra: string, files: Record<string, string> = {}): Promise<string> {
  const app = join(work, name, 'jupyter-apptainer');
  await buildApp(await presetsWith(name, extra, files), app);
  return app;
}
const overlayApp = await appWith('overlay', 'python:\n  overlays: /opt/ood-jupyter/overlays\n');
const installApp = await appWith('install', 'python:\n  userInstall: true\n');

const form = (overrides: Record<string, string> = {}) => ({
  slurm_partition: 'cpu', container: 'python3-only', num_gpus: '0', num_cores: '1', memory_gb: '1', bc_num_hours: '1',
  working_dir: '', extra_binds: '', ...overrides,
});

const launch = (app: string, values: Record<string, string>) => launchOne(t, node, app, values);
const running = (session: Session) => runningLogin(node, session);

async function ended(session: Session): Promise<string> {
  await waitFor('the job to end', async () => (await node.jobState(session.jobId)) === '', 180_000, 250);
  return outputLog(session);
}

const stop = (session: Session) => stopSession(node, session);

const errorLines = (log: string) => log.split('\n').filter((l) => l.includes('ERROR'));
const json = (text: string) => JSON.parse(text.trim().split('\n').pop()!) as Record<string, unknown>;

// Every case starts from a researcher with no caches, no package directories and no environments.
async function freshHome() {
  for (const dir of ['.cache/ood-jupyter', '.local/share/ood-jupyter', '.local/lib', 'venvs', '.conda', 'wheels']) {
    await rm(join(hostHome, dir), { recursive: true, force: true });
  }
}
await freshHome();
t.teardown(freshHome);

const packageDir = `${home}/.local/share/ood-jupyter/packages/python3-only-py3.13`;

// A wheel made here (a wheel is a zip with its metadata): pip installs it with no package index.
async function makeWheel(): Promise<string> {
  const dir = join(hostHome, 'wheels');
  await mkdir(dir, { recursive: true });
  await execa('python3', ['-c', `
import base64, hashlib, sys, zipfile
files = {"hello_ood.py": "GREETING = 'hello from the package directory'\\n",
         "hello_ood-1.0.dist-info/METADATA": "Metadata-Version: 2.1\\nName: hello-ood\\nVersion: 1.0\\n",
         "hello_ood-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\\nGenerator: ood-jupyter-test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"}
record = []
with zipfile.ZipFile(sys.argv[1], "w") as whl:
    for name, text in files.items():
        whl.writestr(name, text)
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append("%s,sha256=%s,%d" % (name, digest, len(text.encode())))
    record.append("hello_ood-1.0.dist-info/RECORD,,")
    whl.writestr("hello_ood-1.0.dist-info/RECORD", "\\n".join(record) + "\\n")
`, join(dir, 'hello_ood-1.0-py3-none-any.whl')]);
  await node.chownToUser(`${home}/wheels`);
  return `${home}/wheels/hello_ood-1.0-py3-none-any.whl`;
}

const KERNEL_FACTS = [
  'import importlib.util, json, os, sys',
  'print(json.dumps({"prefix": sys.prefix, "container": os.path.isdir("/.singularity.d"), "job": os.environ.get("SLURM_JOB_ID", ""),',
  '  "cuda": os.environ.get("CUDA_VISIBLE_DEVICES", ""), "gpus": sorted(d for d in os.listdir("/dev") if d.startswith("nvidia")),',
  '  "ipykernel": importlib.util.find_spec("ipykernel").origin, "nousersite": os.environ.get("PYTHONNOUSERSITE", ""),',
  '  "shadow": importlib.util.find_spec("ood_shadow") is not None, "version": sys.version.split()[0]}))',
].join('\n');

t.test('an image with only python3 and pip, through the site overlay: JupyterLab starts, kernels run, pip installs stay in the package directory', async (t) => {
  // A broken ipykernel and a module in ~/.local that the image's Python would import first.
  const userSite = join(hostHome, '.local/lib/python3.13/site-packages');
  await mkdir(join(userSite, 'ipykernel'), { recursive: true });
  await writeFile(join(userSite, 'ipykernel/__init__.py'), 'raise ImportError("a broken ipykernel in ~/.local")\n');
  await writeFile(join(userSite, 'ood_shadow.py'), 'SHADOW = True\n');
  await node.chownToUser(`${home}/.local`);
  const wheel = await makeWheel();

  const first = await launch(overlayApp, form());
  const login = await running(first);
  const log = await outputLog(first);
  t.match(log, /^ood-jupyter: the image lacks JupyterLab and ipykernel; using the site's JupyterLab for Python 3\.13 \(\/opt\/ood-jupyter\/overlays\/python3\.13\)\.$/m, 'output.log says where JupyterLab comes from');
  t.match(log, /^ood-jupyter: checked what the image \S+ contains in /m, 'the first session probes the image');
  t.same(errorLines(log), [], 'no error line');

  const facts = json((await runInKernel(login, 'python3', KERNEL_FACTS)).stdout);
  t.equal(facts.container, true, 'the kernel runs in the container');
  t.match(facts.version, /^3\.13\./, `the image's own Python (${facts.version})`);
  t.match(facts.ipykernel, /^\/opt\/ood-jupyter\/overlays\/python3\.13\/site-packages\/ipykernel\//, 'ipykernel from the overlay');
  t.equal(facts.nousersite, '1', 'PYTHONNOUSERSITE=1 in the kernel');
  t.equal(facts.shadow, false, 'a module in ~/.local is not importable: the broken ipykernel there broke nothing');

  const pip = await runInKernel(login, 'python3', [
    `%pip install --no-index --quiet ${wheel}`,
    'import importlib, json; importlib.invalidate_caches()',
    'import hello_ood; print(json.dumps({"file": hello_ood.__file__}))',
  ].join('\n'));
  t.equal(json(pip.stdout).file, `${packageDir}/lib/python3.13/site-packages/hello_ood.py`, `%pip install lands in the package directory:\n${pip.stdout}`);
  t.notOk(existsSync(join(userSite, 'hello_ood.py')), 'not in ~/.local');
  const terminal = await runInTerminal(login, 'python3 -c "import hello_ood; print(\'TERM-OK-1\', hello_ood.__name__)"');
  t.match(terminal, /TERM-OK-1 hello_ood/, 'a terminal\'s python3 sees the package directory too');
  await stop(first);

  const second = await launch(overlayApp, form());
  const again = await running(second);
  const secondLog = await outputLog(second);
  t.notMatch(secondLog, /checked what the image/, 'a second session of the image probes nothing (cached by image identity)');
  const reuse = await runInKernel(again, 'python3', 'import hello_ood; print(hello_ood.GREETING)');
  t.match(reuse.stdout, /hello from the package directory/, 'the second session sees the package installed in the first');
  await stop(second);
});

t.test('a researcher\'s own .sif under an allowed directory: its own package directory', async (t) => {
  await mkdir(join(hostHome, 'images'), { recursive: true });
  await cp(node.hostPath('/opt/images/python3-only.sif'), join(hostHome, 'images/my lab image.sif'));
  await node.chownToUser(`${home}/images`);
  t.teardown(() => rm(join(hostHome, 'images'), { recursive: true, force: true }));
  const session = await launch(overlayApp, form({ container: 'custom', custom_image: `${home}/images/my lab image.sif` }));
  const login = await running(session);
  const result = await runInKernel(login, 'python3', 'import os; print(os.environ["PYTHONUSERBASE"])');
  t.equal(result.stdout.trim(), `${home}/.local/share/ood-jupyter/packages/own-my-lab-image-py3.13`, 'a package directory named after the image');
  t.match(await outputLog(session), /using the site's JupyterLab for Python 3\.13/);
  await stop(session);
});

t.test('the researcher\'s conda environment and venvs: kernels inside the same container, with the same GPU', async (t) => {
  const asResearcher = (command: string) => inNode(['bash', '-c', command], { timeout: 120_000 });
  const made = await asResearcher([
    'set -e',
    'lab=/opt/images/jupyterlab.sif',
    // A venv with the image's ipykernel (--system-site-packages), as a researcher makes one in a session.
    'apptainer exec $lab python3 -m venv --system-site-packages --without-pip ~/venvs/analysis',
    // A conda-style environment: conda-meta/ marks it; it carries a kernelspec of its own.
    'apptainer exec $lab python3 -m venv --system-site-packages --without-pip ~/.conda/envs/torchlike',
    'mkdir -p ~/.conda/envs/torchlike/conda-meta ~/.conda/envs/torchlike/share/jupyter/kernels/extra',
    'printf \'{"argv": ["%s/bin/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"], "display_name": "Extra kernel", "language": "python"}\' ~/.conda/envs/torchlike > ~/.conda/envs/torchlike/share/jupyter/kernels/extra/kernel.json',
    // A venv made from Python 3.11 (bookworm), which the trixie image lacks.
    'apptainer exec /opt/images/jupyter-server-1.sif /usr/bin/python3.11 -m venv --without-pip ~/venvs/oldpython',
    // A venv without ipykernel.
    'apptainer exec $lab python3 -m venv --without-pip ~/venvs/bare',
  ].join('\n'));
  t.equal(made.exitCode, 0, `environments made: ${made.stderr}`);
  t.teardown(async () => {
    for (const dir of ['venvs', '.conda']) await rm(join(hostHome, dir), { recursive: true, force: true });
  });

  const session = await launch(overlayApp, form({ container: 'jupyterlab', slurm_partition: 'gpu', num_gpus: '1' }));
  const login = await running(session);
  const log = await outputLog(session);
  t.match(log, new RegExp(`^ood-jupyter: no kernel for the environment ${home}/venvs/oldpython: its Python \\(/usr/bin/python3\\.11\\) does not run in this container\\.$`, 'm'), 'the venv from a missing Python is skipped, with its line');
  t.match(log, new RegExp(`^ood-jupyter: no kernel for the environment ${home}/venvs/bare: it has no ipykernel`, 'm'), 'the venv without ipykernel is named');
  t.same(errorLines(log), [], 'no error line');

  const specs = await kernelSpecs(login);
  const byName = (display: string) => Object.keys(specs).find((k) => specs[k] === display);
  const venv = byName('Python 3.13 (venv: analysis)');
  const conda = byName('Python 3.13 (conda: torchlike)');
  const extra = byName('Extra kernel (conda: torchlike)');
  t.ok(venv && conda && extra, `kernels offered: ${JSON.stringify(specs)}`);
  t.notOk(Object.values(specs).some((d) => /oldpython|bare/.test(d)), 'no kernel for the skipped ones');
  for (const [name, prefix] of [[venv, `${home}/venvs/analysis`], [conda, `${home}/.conda/envs/torchlike`], [extra, `${home}/.conda/envs/torchlike`]] as const) {
    const facts = json((await runInKernel(login, name!, KERNEL_FACTS)).stdout);
    t.equal(facts.prefix, prefix, `${specs[name!]}: sys.prefix is the environment`);
    t.equal(facts.container, true, `${specs[name!]}: inside the container`);
    t.equal(facts.job, session.jobId, `${specs[name!]}: inside the Slurm job`);
    t.match(String(facts.cuda), /^[01]$/, `${specs[name!]}: with the job's GPU (CUDA_VISIBLE_DEVICES=${facts.cuda})`);
    t.ok((facts.gpus as string[]).includes('nvidia0'), `${specs[name!]}: --nv devices visible`);
  }
  await stop(session);
});

t.test('batch-script: the printed sbatch script, submitted as a real job, runs in the notebook kernel\'s environment', async (t) => {
  const FACTS = [
    'import importlib.util, json, os, sys',
    'print("FACTS " + json.dumps({"executable": sys.executable, "version": sys.version.split()[0], "container": os.path.isdir("/.singularity.d"),',
    '  "package_dir_on_path": [p for p in sys.path if "/ood-jupyter/packages/" in p], "hello": importlib.util.find_spec("hello_ood") is not None,',
    '  "ipykernel": importlib.util.find_spec("ipykernel").origin, "nousersite": os.environ.get("PYTHONNOUSERSITE", ""),',
    '  "userbase": os.environ.get("PYTHONUSERBASE", ""), "gpus": sorted(d for d in os.listdir("/dev") if d.startswith("nvidia")),',
    '  "cuda_set": os.environ.get("CUDA_VISIBLE_DEVICES", "") != "", "job_set": os.environ.get("SLURM_JOB_ID", "") != ""}, sort_keys=True))',
  ].join('\n');
  const values = form({ slurm_partition: 'gpu', num_gpus: '1' });
  const session = await launch(overlayApp, values);
  const login = await running(session);
  const notebook = (await runInKernel(login, 'python3', FACTS)).stdout.split('\n').find((l) => l.startsWith('FACTS '));
  await stop(session);

  const cli = await execa('node', [join(repoRoot, 'dist/cli.js'), 'batch-script', '--presets', join(work, 'presets-overlay'),
    '--partition', 'gpu', '--container', 'python3-only', '--gpus', '1', '--mem', '1', '--hours', '1', '--', 'python3', '-c', FACTS], { reject: false });
  t.equal(cli.exitCode, 0, cli.stderr);
  t.match(cli.stdout, /^#SBATCH --partition=gpu$/m);
  t.match(cli.stdout, /^#SBATCH --gres=gpu:1$/m);
  const outputFile = `${home}/batch-facts.out`;
  await rm(node.hostPath(outputFile), { force: true });
  const jobId = await node.sbatch([`--output=${outputFile}`], cli.stdout);
  t.teardown(() => node.scancel(jobId));
  // Until it printed its facts or an error (squeue may miss a job for a moment: the output decides).
  const output = await waitFor('the batch job\'s output', async () => {
    const text = existsSync(node.hostPath(outputFile)) ? await readFile(node.hostPath(outputFile), 'utf8') : '';
    return /^FACTS |ERROR|error/m.test(text) ? text : null;
  }, 180_000, 250);
  const batch = output.split('\n').find((l) => l.startsWith('FACTS '));
  t.ok(batch, `the job printed its facts:\n${output}`);
  t.equal(batch, notebook, 'the same container facts as the notebook kernel: Python, package directory, overlay, --nv');
  t.match(batch!, /"hello": true/, 'including the package installed from the notebook');
  t.match(batch!, /"gpus": \["nvidia0"/, 'and the GPU device');
});

t.test('a per-user install on a node without network: one clear line, and the definition file', async (t) => {
  const session = await launch(installApp, form());
  const log = await ended(session);
  const errors = errorLines(log);
  t.equal(errors.length, 1, `one error line:\n${log}`);
  const definition = join(session.nodeRoot, 'jupyterlab-image.def');
  t.match(errors[0], new RegExp(`^ood-jupyter: ERROR: the image /opt/images/python3-only\\.sif lacks JupyterLab and ipykernel, and \\S+ cannot reach the Python package index to install them\\. A definition file for the same image with them is at ${definition.replace(/[.]/g, '\\.')}:`));
  t.ok(existsSync(node.hostPath(definition)), 'the definition file is there');
  t.notOk(existsSync(join(session.hostRoot, 'connection.yml')), 'the session never claims to be running');
  t.notOk(existsSync(join(hostHome, '.local/share/ood-jupyter/jupyterlab/python3-only-py3.13')), 'no half-made install is left to be used');
});

t.test('docker:// images from a real registry: pulled once, a moved tag pulled again, a killed pull never used', { skip: !registryAvailable() && process.env.CI !== 'true' ? 'docker-registry, umoci or skopeo missing' : false }, async (t) => {
  const registry = await startRegistry(node);
  t.teardown(() => registry.stop());
  const rootfs = join(work, 'rootfs');
  await mkdir(rootfs);
  await unpackImage(node, '/opt/images/python3-only.sif', rootfs);
  const uri = `docker://${registry.address}/lab/python3:latest`;
  const cache = join(hostHome, '.cache/ood-jupyter/images');
  const own = (image: string) => form({ container: 'custom', custom_image: image });
  const versionIn = async (login: Login) => (await runInKernel(login, 'python3', 'print(open("/etc/ood-image-version").read().strip() if __import__("os").path.exists("/etc/ood-image-version") else "none")')).stdout.trim();

  const v1 = await registry.push(rootfs, 'lab/python3:latest');
  // What a pull killed in an earlier run leaves: a temporary file that must never be used.
  await mkdir(cache, { recursive: true });
  await writeFile(join(cache, `.pull-${v1.slice('sha256:'.length)}.999.sif`), 'not an image');
  await node.chownToUser(`${home}/.cache`);

  const pair = await Promise.all([launch(overlayApp, own(uri)), launch(overlayApp, own(uri))]);
  const logins = await Promise.all(pair.map((s) => running(s)));
  const logs = await Promise.all(pair.map((s) => outputLog(s)));
  t.equal(logs.filter((l) => /^ood-jupyter: pulling docker:/m.test(l)).length, 1, `two sessions at once: one pulls:\n${logs.join('\n----\n')}`);
  const blobGets = (await registry.log()).split('\n').filter((l) => /"GET \/v2\/lab\/python3\/blobs\/sha256:/.test(l));
  const perBlob = new Map<string, number>();
  for (const line of blobGets) { const d = /blobs\/(sha256:[0-9a-f]+)/.exec(line)![1]!; perBlob.set(d, (perBlob.get(d) ?? 0) + 1); }
  t.ok(perBlob.size > 0 && [...perBlob.values()].every((n) => n === 1), `the registry served each blob once: ${JSON.stringify([...perBlob])}`);
  t.same(await Promise.all(logins.map(versionIn)), ['none', 'none'], 'both kernels run in the pulled image');
  t.ok(existsSync(join(cache, `${v1.slice('sha256:'.length)}.sif`)), 'the cache holds it under its digest');
  t.notOk((await readdir(cache)).some((f) => f.startsWith('.pull-')), 'the leftover of a killed pull was removed, not used');
  await Promise.all(pair.map(stop));

  // The tag moves: the next session notices and pulls the new digest.
  await writeFile(join(rootfs, 'etc/ood-image-version'), '2\n');
  const v2 = await registry.push(rootfs, 'lab/python3:latest');
  t.not(v2, v1, 'the tag now names another digest');
  const moved = await launch(overlayApp, own(uri));
  const movedLogin = await running(moved);
  t.match(await outputLog(moved), /^ood-jupyter: pulling docker:/m, 'a moved tag is pulled again');
  t.equal(await versionIn(movedLogin), '2', 'and the session runs the new image');
  await stop(moved);

  // A pull killed halfway (scancel while it runs) leaves nothing a later session uses.
  await writeFile(join(rootfs, 'etc/ood-image-version'), '3\n');
  const v3 = await registry.push(rootfs, 'lab/python3:latest');
  const hex3 = v3.slice('sha256:'.length);
  const killed = await launch(overlayApp, own(uri));
  await waitFor('the pull to start', async () => existsSync(cache) && (await readdir(cache)).some((f) => f.startsWith(`.pull-${hex3}.`)), 120_000, 50);
  await new Promise((r) => setTimeout(r, 1500));
  t.ok((await node.userProcesses()).some((p) => p.includes(' pull ')), 'the pull is running when the session is cancelled');
  await stop(killed);
  await waitFor('the pull to die with the job', async () => !(await node.userProcesses()).some((p) => p.includes(' pull ') || p.includes('squashfs')), 30_000, 250)
    .catch(async () => t.fail(`still running after scancel:\n${(await node.userProcesses()).join('\n')}`));
  t.pass('scancel ended the pull with the job: no apptainer pull, no squashfs process is left');
  t.notOk(existsSync(join(cache, `${hex3}.sif`)), 'the killed pull left no image under the digest');
  const after = await launch(overlayApp, own(uri));
  const afterLogin = await running(after);
  t.match(await outputLog(after), /^ood-jupyter: pulling docker:/m, 'the next session pulls it again');
  t.equal(await versionIn(afterLogin), '3', 'and runs the complete image');
  await stop(after);

  // An oras:// image: a SIF pushed to the registry as an OCI artifact, pulled the same way.
  const pushed = await inNode(['apptainer', 'push', '/opt/images/python3-only.sif', `oras://${registry.address}/lab/sif:1`], { timeout: 300_000 });
  t.equal(pushed.exitCode, 0, `apptainer push oras://: ${pushed.stderr}`);
  const oras = await launch(overlayApp, own(`oras://${registry.address}/lab/sif:1`));
  const orasLogin = await running(oras);
  t.match(await outputLog(oras), /^ood-jupyter: pulling oras:\/\/localhost:\d+\/lab\/sif:1 into /m, 'an oras:// image is pulled into the cache');
  t.equal(await versionIn(orasLogin), 'none', 'and its kernel runs');
  await stop(oras);

  // Staff pre-pull a curated image into the site cache from a login node (ood-jupyter pull's program, run
  // in the node as the staff member); a session then finds it there and pulls nothing.
  const siteCache = `${home}/site-cache`;
  await mkdir(node.hostPath(siteCache), { recursive: true });
  await node.chownToUser(siteCache);
  const curated = await presetsWith('site-cache', `images:\n  cacheDir: ${siteCache}\npython:\n  overlays: /opt/ood-jupyter/overlays\n`, {
    'containers/registry.yml': `label: From the registry\nimage: docker://${registry.address}/lab/python3:latest\njupyterlab: false\n`,
  });
  const plan = await planFromPresets(curated);
  const program = pullProgram(plan, await renderApp(plan));
  t.same(program.images, [`docker://${registry.address}/lab/python3:latest`]);
  const prePull = await inNode(['bash', '--norc', '--noprofile', '-c', program.script], { timeout: 300_000 });
  t.equal(prePull.exitCode, 0, prePull.stdout + prePull.stderr);
  t.match(prePull.stdout, new RegExp(`^ood-jupyter: registry: docker://${registry.address}/lab/python3:latest is ${siteCache}/${hex3}\\.sif$`, 'm'), `pre-pulled into the site cache:\n${prePull.stdout}`);
  const curatedApp = join(work, 'site-cache', 'jupyter-apptainer');
  await buildApp(curated, curatedApp);
  await rm(cache, { recursive: true, force: true });
  const fromSite = await launch(curatedApp, form({ container: 'registry' }));
  const fromSiteLogin = await running(fromSite);
  const fromSiteLog = await outputLog(fromSite);
  t.notMatch(fromSiteLog, /pulling/, 'the session pulls nothing');
  t.match(fromSiteLog, new RegExp(`starting JupyterLab from ${siteCache}/${hex3}\\.sif `), 'it runs the site cache\'s copy');
  t.equal(await versionIn(fromSiteLogin), '3');
  await stop(fromSite);
});
