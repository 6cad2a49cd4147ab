// How sessions end, on the real test node, and what the completed view (completed.html.erb, rendered with
// real Ruby as the dashboard renders it) tells the researcher: a session that could not start, one cancelled
// with scancel, one that reached its time limit, and one that ended itself after a minute without activity
// (the partition's idleMinutes), so that its GPUs go back.
import t from 'tap';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from '../../src/build.js';
import { repoRoot } from '../support/presets.js';
import { renderViews } from '../support/ood.js';
import { artifactsDir, chromiumAvailable, launchBrowser } from './support/browser.js';
import { inNode, NODE_NOT_RUNNING, nodeStatus, requireOrExit, TestNode } from './support/node.js';
import { connection, outputLog, stageLaunches, submit, waitFor, type Session } from './support/session.js';
import { logIn, startKernel } from './support/jupyter.js';

const found = await nodeStatus();
requireOrExit(t, found ? null : NODE_NOT_RUNNING, 'the end-to-end suite');
const node = new TestNode(found!);

// The suite's presets, with sessions on the cpu partition ending after 1 minute without activity.
const work = await mkdtemp(join(tmpdir(), 'ood-jupyter-ended-'));
t.teardown(() => rm(work, { recursive: true, force: true }));
const presets = join(work, 'presets');
await cp(join(repoRoot, 'test/e2e/presets'), presets, { recursive: true });
await writeFile(join(presets, 'partitions/cpu.yml'), `${await readFile(join(presets, 'partitions/cpu.yml'), 'utf8')}idleMinutes: 1\n`);
const appDir = join(work, 'jupyter-apptainer');
await buildApp(presets, appDir);

const form = (overrides: Record<string, string> = {}) => ({
  slurm_partition: 'gpu', container: 'jupyterlab', num_gpus: '1', num_cores: '1', memory_gb: '1', bc_num_hours: '1',
  working_dir: '', extra_binds: '', ...overrides,
});

async function launch(values: Record<string, string>): Promise<Session> {
  const [staged] = await stageLaunches(node, appDir, [values]);
  const session = await submit(node, staged!);
  t.teardown(() => node.scancel(session.jobId));
  return session;
}
const running = (s: Session) => waitFor('connection.yml', () => connection(s), 120_000, 250)
  .catch(async (e: Error) => { throw new Error(`${e.message}\n${await outputLog(s)}`); });
const ended = async (s: Session, ms = 240_000) => {
  await waitFor('the job to end', async () => (await node.jobState(s.jobId)) === '', ms, 500);
  return outputLog(s);
};

/** The completed view as the dashboard renders it for this session (real Ruby, the session's own files). */
async function completed(s: Session, name: string): Promise<string> {
  const views = await renderViews(appDir, { stagedRoot: s.hostRoot, jobId: s.jobId, status: 'completed', connection: {} });
  if (views.completedError) throw new Error(views.completedError);
  const html = views.completedMd ?? '';
  if (chromiumAvailable()) {
    const browser = await launchBrowser();
    const page = await browser.newPage({ viewport: { width: 900, height: 500 } });
    await page.setContent(`<!doctype html><html><body style="font-family:sans-serif;max-width:46rem;margin:1rem auto">
      <div style="border:1px solid #ccc;border-radius:4px"><div style="background:#eee;padding:.5rem">JupyterLab (${s.jobId}) — Completed</div>
      <div style="padding:.5rem">${html}</div></div></body></html>`);
    await mkdir(artifactsDir, { recursive: true });
    await page.locator('body > div').screenshot({ path: join(artifactsDir, `completed-${name}.png`) });
    await browser.close();
  }
  return html.replace(/\s+/g, ' ');
}

t.test('a session that cannot start: the completed view gives its one line and what to do', async (t) => {
  const session = await launch(form({ container: 'python3-only', slurm_partition: 'cpu', num_gpus: '0' }));
  await ended(session);
  const view = await completed(session, 'failed');
  t.match(view, /<strong>The session stopped with an error:<\/strong>/);
  t.match(view, /<p>ood-jupyter: ERROR: the image \/opt\/images\/python3-only\.sif lacks JupyterLab and ipykernel for its Python 3\.13/, 'the job\'s own line');
  t.equal(view.match(/ood-jupyter: ERROR/g)?.length, 1, 'the error line once, not again in the log excerpt');
});

t.test('a session that reaches its time limit, and one cancelled at the same time', async (t) => {
  const [limited, cancelled] = await Promise.all([launch(form()), launch(form({ slurm_partition: 'cpu', num_gpus: '0' }))]);
  const connections = await Promise.all([running(limited), running(cancelled)]);
  // An open notebook in each: its kernel must die with the job, whichever way the job ends.
  const kernelIds = await Promise.all(connections.map(async (c) => startKernel(await logIn(c))));
  const kernelsOf = async (s: Session) => (await node.userProcesses()).filter((p) => p.includes('ipykernel') && p.includes(s.nodeRoot));
  t.equal((await kernelsOf(limited)).length + (await kernelsOf(cancelled)).length, 2, `a kernel runs in each session (${kernelIds.join(', ')})`);
  // The running session's card: what the job itself reported (its GPU, kernels, package directory).
  const card = await renderViews(appDir, { stagedRoot: limited.hostRoot, jobId: limited.jobId, info: { wallclockTime: 300, wallclockLimit: 3600 } });
  t.equal(card.infoError, null);
  t.match(card.infoMd, /^- \*\*GPUs:\*\* 1 \(on its node: GPU [01]\)$/m, 'the GPU the job got');
  t.match(card.infoMd, /^- \*\*Time left:\*\* 0 h 55 min$/m);
  t.match(card.infoMd, /^- \*\*JupyterLab:\*\* the image&#39;s own$/m);
  t.match(card.infoMd, /^- \*\*Kernels:\*\* Python 3 \(Debian JupyterLab\)$/m);
  t.match(card.infoMd, /^- \*\*`pip install` goes to:\*\* \/home\/researcher\/\.local\/share\/ood-jupyter\/packages\/jupyterlab-py3\.13$/m);
  // The time limit, brought forward to one minute (as if the session had been launched for one).
  const update = await inNode(['scontrol', 'update', `JobId=${limited.jobId}`, 'TimeLimit=1'], { root: true });
  t.equal(update.exitCode, 0, update.stderr);
  await node.scancel(cancelled.jobId);
  await ended(cancelled, 60_000);
  const cancelledView = await completed(cancelled, 'cancelled');
  t.match(cancelledView, /<strong>The session was cancelled \(Delete on its card, or scancel\) before its time was up\.<\/strong>/);
  await ended(limited, 240_000);
  const limitedView = await completed(limited, 'time-limit');
  t.match(limitedView, /<strong>The session reached its time limit of 1 hour\(s\), and Slurm ended it\.<\/strong>/);
  t.match(limitedView, /the GPU \(test node\) partition allows up to 8\)/, 'and how many hours the partition allows');
  t.match(limitedView, /<pre style="white-space: pre-wrap">[^<]*ood-jupyter: JupyterLab is listening on /, 'and the job\'s own lines from output.log');
  const left = (await node.userProcesses()).filter((p) => p.includes(limited.nodeRoot) || p.includes(cancelled.nodeRoot));
  t.same(left, [], 'the time limit and scancel ended JupyterLab and the kernels: no process of either session is left');
});

t.test('idleMinutes: 1 — a session nobody uses ends by itself and frees its resources', async (t) => {
  const session = await launch(form({ slurm_partition: 'cpu', num_gpus: '0' }));
  await running(session);
  const started = Date.now();
  const log = await ended(session, 300_000);
  const minutes = (Date.now() - started) / 60_000;
  t.match(log, /No kernels for \d+ seconds; shutting down/, 'JupyterLab shut itself down');
  t.ok(minutes < 3.5, `it ended ${minutes.toFixed(1)} minutes after it started (idle limit 1 minute, checked every minute)`);
  t.comment(`idle session ended ${minutes.toFixed(1)} min after connection.yml`);
  const view = await completed(session, 'idle');
  t.match(view, /<strong>The session ended itself after 1 minute\(s\) without activity, so that its GPUs could go to others\.<\/strong>/);
  t.same(await node.userJobs(), [], 'no job of the researcher is left');
});
