// One researcher session, launched the way Open OnDemand launches it: the form values rendered through
// submit.yml.erb and the staged templates by real Ruby (test/support/ood-dashboard.rb), the job script
// of OOD's basic template around them, and sbatch with the arguments OOD's Slurm adapter passes.
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { load } from 'js-yaml';
import { renderLaunches, sbatchArgs, type LaunchResult } from '../../support/ood.js';
import { jobScript } from '../../support/basic-template.js';
import { repoRoot } from '../../support/presets.js';
import type { TestNode } from './node.js';
import { logIn, type Login } from './jupyter.js';

export interface Connection { host: string; port: number; password: string }

export interface Session {
  jobId: string;
  /** The session directory as the job sees it, and where the host sees it. */
  nodeRoot: string;
  hostRoot: string;
  submittedAt: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Render a batch of launches; staged ones are written straight into the node's file system. */
export async function stageLaunches(node: TestNode, appDir: string, forms: Array<Record<string, string>>): Promise<Array<{ launch: LaunchResult; nodeRoot: string }>> {
  const nodeRoots = forms.map(() => join(node.status.home, 'ondemand/data/sys/dashboard/batch_connect/sys/jupyter-apptainer/output', randomUUID()));
  for (const root of nodeRoots) await mkdir(join(node.hostPath(root), '..'), { recursive: true });
  const launches = await renderLaunches(appDir, forms.map((values, i) => ({ values, stagedRoot: node.hostPath(nodeRoots[i]!) })));
  return launches.map((launch, i) => ({ launch, nodeRoot: nodeRoots[i]! }));
}

export async function submit(node: TestNode, staged: { launch: LaunchResult; nodeRoot: string }): Promise<Session> {
  if (!staged.launch.ok) throw new Error(`launch refused: ${staged.launch.error}`);
  await node.chownToUser(join(node.status.home, 'ondemand'));
  const args = sbatchArgs(staged.launch.submit!, { stagedRoot: staged.nodeRoot, jobName: 'sys/dashboard/sys/jupyter-apptainer' });
  const submittedAt = Date.now();
  const jobId = await node.sbatch(args, jobScript(staged.nodeRoot));
  return { jobId, nodeRoot: staged.nodeRoot, hostRoot: node.hostPath(staged.nodeRoot), submittedAt };
}

export async function waitFor<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs: number, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

export async function outputLog(session: Session): Promise<string> {
  const path = join(session.hostRoot, 'output.log');
  return existsSync(path) ? readFile(path, 'utf8') : '';
}

export async function connection(session: Session): Promise<Connection | null> {
  const path = join(session.hostRoot, 'connection.yml');
  if (!existsSync(path)) return null;
  const parsed = load(await readFile(path, 'utf8')) as Record<string, unknown> | null;
  if (!parsed?.host || !parsed.port || !parsed.password) return null;
  return { host: String(parsed.host), port: Number(parsed.port), password: String(parsed.password) };
}

/** Wait until the session is running (connection.yml written); fails with output.log if the job ends first. */
export async function waitRunning(node: TestNode, session: Session, timeoutMs = 240_000): Promise<Connection> {
  return waitFor('connection.yml', async () => {
    if ((await node.jobState(session.jobId)) === '' && !(await connection(session))) throw new Error(`the job ended:\n${await outputLog(session)}`);
    return connection(session);
  }, timeoutMs, 250).catch(async (e: Error) => { throw new Error(`${e.message}\noutput.log:\n${await outputLog(session)}`); });
}

/** Cancel the session and wait until Slurm has let it go. */
export async function stopSession(node: TestNode, session: Session): Promise<void> {
  await node.scancel(session.jobId);
  await waitFor('the job to leave the queue', async () => (await node.jobState(session.jobId)) === '', 60_000, 250);
}

/** Stage and submit one launch of APP with VALUES, cancelled when the test ends. */
export async function launchOne(t: { teardown(fn: () => unknown): void }, node: TestNode, app: string, values: Record<string, string>): Promise<Session> {
  const [staged] = await stageLaunches(node, app, [values]);
  const session = await submit(node, staged!);
  t.teardown(() => node.scancel(session.jobId));
  return session;
}

/** Wait until the session runs, then log in as the Connect button does (a 302 to the lab). */
export async function runningLogin(node: TestNode, session: Session): Promise<Login> {
  const login = await logIn(await waitRunning(node, session));
  if (login.status !== 302) throw new Error(`login answered ${login.status}`);
  return login;
}

/** A copy of the suite's presets (test/e2e/presets) in WORK/presets-NAME, with EXTRA appended to site.yml and FILES added. */
export async function suitePresetsWith(work: string, name: string, extra: string, files: Record<string, string> = {}): Promise<string> {
  const presets = join(work, `presets-${name}`);
  await cp(join(repoRoot, 'test/e2e/presets'), presets, { recursive: true });
  const site = join(presets, 'site.yml');
  await writeFile(site, `${await readFile(site, 'utf8')}${extra}`);
  for (const [path, text] of Object.entries(files)) await writeFile(join(presets, path), text);
  return presets;
}
