// A sample of test/hostile.test.ts's hostile values through real jobs on the test node: as the name of
// the working directory, and of a researcher's own image. test/hostile.test.ts renders every value in
// every field by real Ruby and sources it in bash; here the ones a file name can hold go all the way:
// submit.yml.erb, sbatch, before.sh, Apptainer, JupyterLab, a kernel. Each must arrive literally (the
// kernel's working directory is that directory; the session runs that image), or be refused before
// sbatch with one of the app's sentences. A canary file proves nothing ran.
import t from 'tap';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from '../../src/build.js';
import { submitMessages } from '../../src/messages.js';
import { repoRoot } from '../support/presets.js';
import { hostileValues } from '../support/hostile-values.js';
import { inNode, NODE_NOT_RUNNING, nodeStatus, requireOrExit, TestNode } from './support/node.js';
import { connection, outputLog, stageLaunches, submit, waitFor, type Session } from './support/session.js';
import { logIn, runInKernel } from './support/jupyter.js';

const found = await nodeStatus();
requireOrExit(t, found ? null : NODE_NOT_RUNNING, 'the end-to-end suite');
const node = new TestNode(found!);
const home = found!.home;

const appParent = await mkdtemp(join(tmpdir(), 'ood-jupyter-hostile-jobs-'));
t.teardown(() => rm(appParent, { recursive: true, force: true }));
const appDir = join(appParent, 'jupyter-apptainer');
await buildApp(join(repoRoot, 'test/e2e/presets'), appDir);

// The canary is a relative name: a value that ran would make it in the job's working directory, which
// is under hostile/ (or the home directory): both are searched.
const CANARY = 'OOD-JUPYTER-CANARY';
const { texts } = hostileValues(`touch ${CANARY}`, CANARY);
const canaries = async () => (await inNode(['find', home, '-maxdepth', '3', '-name', `${CANARY}*`])).stdout.trim();
await rm(node.hostPath(`${home}/hostile`), { recursive: true, force: true });
await rm(node.hostPath(`${home}/hostile-images`), { recursive: true, force: true });

// What a file name can hold (no "/", no NUL, not empty or "." , under 200 bytes).
const fileNames = texts.filter(([, v]) => !v.includes('/') && !v.includes('\0') && v.trim() !== '' && v !== '.' && Buffer.byteLength(v) < 200);
const sentences = Object.values(submitMessages).map((m) => new RegExp(`^${m.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/%\\\{\w+\\\}/g, '[^]*')}$`));

interface Trial { what: string; values: Record<string, string>; check: (cwd: string, version: string) => [boolean, string] }
const form = (overrides: Record<string, string>) => ({
  slurm_partition: 'cpu', container: 'jupyterlab', custom_image: '', num_gpus: '0', num_cores: '1', memory_gb: '1', bc_num_hours: '1',
  working_dir: '', extra_binds: '', ...overrides,
});

const trials: Trial[] = [];
for (const [category, value] of fileNames) {
  const dir = `${home}/hostile/${value}`;
  await mkdir(node.hostPath(dir), { recursive: true });
  trials.push({ what: `working_dir = ${category} (${JSON.stringify(value).slice(0, 40)})`, values: form({ working_dir: dir }), check: (cwd) => [cwd === dir, `the kernel works in ${JSON.stringify(cwd)}`] });
}
// A researcher's own image under a hostile name: the suite's JupyterLab image, hard-linked.
await mkdir(node.hostPath(`${home}/hostile-images`), { recursive: true });
for (const [category, value] of fileNames.slice(0, 8)) {
  const image = `${home}/hostile-images/${value}.sif`;
  const linked = await inNode(['ln', '/opt/images/jupyterlab.sif', image], { root: true });
  if (linked.exitCode !== 0) throw new Error(linked.stderr);
  trials.push({ what: `custom_image = ${category} (${JSON.stringify(value).slice(0, 40)})`, values: form({ container: 'custom', custom_image: image }), check: (_cwd, file) => [file === image, `the session runs ${JSON.stringify(file)}`] });
}
await node.chownToUser(`${home}/hostile`);
t.teardown(async () => {
  await rm(node.hostPath(`${home}/hostile`), { recursive: true, force: true });
  await rm(node.hostPath(`${home}/hostile-images`), { recursive: true, force: true });
});

t.test(`${trials.length} hostile names in real jobs, ten at a time`, async (t) => {
  const probe = 'import json, os; print(json.dumps([os.getcwd(), os.environ.get("APPTAINER_CONTAINER", "")]))';
  let ran = 0;
  let refused = 0;
  for (let i = 0; i < trials.length; i += 10) {
    const wave = trials.slice(i, i + 10);
    const staged = await stageLaunches(node, appDir, wave.map((w) => w.values));
    const sessions: Array<Session | null> = [];
    for (const [j, s] of staged.entries()) {
      if (!s.launch.ok) {
        refused += 1;
        t.ok(sentences.some((re) => re.test(s.launch.error ?? '')), `${wave[j]!.what}: refused before sbatch with the app's sentence: ${(s.launch.error ?? '').slice(0, 160)}`);
        sessions.push(null);
        continue;
      }
      const session = await submit(node, s);
      t.teardown(() => node.scancel(session.jobId));
      sessions.push(session);
    }
    await Promise.all(sessions.map(async (session, j) => {
      if (!session) return;
      const trial = wave[j]!;
      const conn = await waitFor('connection.yml', () => connection(session), 240_000, 500)
        .catch(async (e: Error) => { throw new Error(`${trial.what}: ${e.message}\n${await outputLog(session)}`); });
      const [cwd, container] = JSON.parse((await runInKernel(await logIn(conn), 'python3', probe)).stdout.trim()) as [string, string];
      const [ok, said] = trial.check(cwd, container);
      t.ok(ok, `${trial.what}: accepted, and ${said}`);
      t.notMatch(await outputLog(session), /ood-jupyter: ERROR/, `${trial.what}: no error line`);
      ran += 1;
      await node.scancel(session.jobId);
    }));
  }
  await waitFor('the jobs to end', async () => (await node.userJobs()).length === 0, 90_000, 500);
  t.equal(await canaries(), '', 'no canary file anywhere in the home directory: no value ran anything');
  t.comment(`${ran} hostile names ran in real jobs, literally; ${refused} were refused before sbatch`);
  t.ok(ran >= 20, `at least 20 ran in real jobs (${ran})`);
});
