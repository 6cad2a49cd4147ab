// `ood-jupyter deploy` and `rollback`: the deployed app directory is a symbolic link to one complete
// version, kept beside it in a hidden directory that the dashboard does not list (OOD's SysRouter skips
// names starting with "."): <parent>/.<name>.versions/<id>/. A deploy writes the new version in full,
// then replaces the link with one rename(2), which is atomic: a deploy stopped at any step leaves the
// app that was there working, and a later deploy clears what it left. The deploy history
// (.<name>.versions/history: "VERSION PREVIOUS" per deploy) tells rollback what was live before.
import { createHash } from 'node:crypto';
import { appendFile, lstat, mkdir, readdir, readFile, readlink, rename, rm, symlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { RenderedFile } from './render/render.js';
import { writeApp } from './write.js';

/** Versions kept besides the deployed one and the one before it. */
const KEEP = 5;

/** TEST HOOK (named so): OOD_JUPYTER_DEPLOY_KILL_AT=<step> makes a deploy kill itself with SIGKILL at that step. */
function step(name: string): void {
  if (process.env.OOD_JUPYTER_DEPLOY_KILL_AT === name) process.kill(process.pid, 'SIGKILL');
}

export const deploySteps = ['rendered', 'written', 'linked', 'switched', 'recorded'] as const;

interface Layout { target: string; versions: string; history: string }

const layout = (target: string): Layout => {
  const versions = join(dirname(target), `.${basename(target)}.versions`);
  return { target, versions, history: join(versions, 'history') };
};

const exists = (path: string) => lstat(path).then(() => true, () => false);

async function current(l: Layout): Promise<string | null> {
  try {
    const link = await readlink(l.target);
    return dirname(link) === basename(l.versions) ? basename(link) : null;
  } catch {
    return null;
  }
}

/** Each deployed version and the one that was live before it (null: none). */
async function history(l: Layout): Promise<Map<string, string | null>> {
  const text = await readFile(l.history, 'utf8').catch(() => '');
  const before = new Map<string, string | null>();
  for (const [version, previous] of text.split('\n').filter(Boolean).map((line) => line.split(' '))) {
    before.set(version!, previous && previous !== '-' ? previous : null);
  }
  return before;
}

/** The versions live before VERSION, nearest first. */
async function chain(l: Layout, version: string | null): Promise<string[]> {
  const before = await history(l);
  const found: string[] = [];
  // A version made live by a deploy stopped before it wrote its line: the last one recorded was live before it.
  let v = version && before.has(version) ? before.get(version) ?? null : [...before.keys()].at(-1) ?? null;
  for (; v && v !== version && !found.includes(v); v = before.get(v) ?? null) found.push(v);
  return found;
}

/** Point TARGET at VERSION with one rename of a new link over the old one. */
async function switchTo(l: Layout, version: string): Promise<void> {
  const link = join(dirname(l.target), `.${basename(l.target)}.link-${process.pid}`);
  await rm(link, { force: true });
  await symlink(join(basename(l.versions), version), link);
  step('linked');
  await rename(link, l.target);
}

export interface DeployResult { version: string; previous: string | null; unchanged: boolean }

export async function deployApp(target: string, files: RenderedFile[]): Promise<DeployResult> {
  step('rendered');
  const l = layout(target);
  await mkdir(l.versions, { recursive: true });
  const hash = createHash('sha256');
  for (const f of [...files].sort((a, b) => a.path.localeCompare(b.path))) hash.update(`${f.path}\0${f.mode}\0${f.content}\0`);
  const digest = hash.digest('hex').slice(0, 12);
  const live = await current(l);
  if (live?.endsWith(`-${digest}`)) return { version: live, previous: live, unchanged: true };
  const version = `${new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${digest}`;
  // Leftovers of a deploy that was stopped: partial versions and links never made live.
  for (const entry of await readdir(l.versions)) {
    if (entry.startsWith('.')) await rm(join(l.versions, entry), { recursive: true, force: true });
  }
  for (const entry of await readdir(dirname(target))) {
    if (entry.startsWith(`.${basename(target)}.link-`)) await rm(join(dirname(target), entry), { force: true });
  }
  await writeApp(join(l.versions, version), files);
  step('written');
  let previous = live;
  const stat = await lstat(target).catch(() => null);
  if (stat && !stat.isSymbolicLink()) {
    // The first deploy over an app installed by hand or by `build`: it becomes a version of its own,
    // so rollback can bring it back. (Two renames: the app is missing for the instant between them.)
    previous = `${version.split('-')[0]}-before-deploy`;
    await rename(target, join(l.versions, previous));
    await appendFile(l.history, `${previous} -\n`);
  }
  await switchTo(l, version);
  step('switched');
  await appendFile(l.history, `${version} ${previous ?? '-'}\n`);
  step('recorded');
  await prune(l, [version, ...(await chain(l, version)).slice(0, KEEP)]);
  return { version, previous, unchanged: false };
}

/** Remove the versions that are neither live nor among the KEEP live before it. */
async function prune(l: Layout, keep: string[]): Promise<void> {
  for (const entry of await readdir(l.versions)) {
    if (entry === 'history' || entry.startsWith('.') || keep.includes(entry)) continue;
    await rm(join(l.versions, entry), { recursive: true, force: true });
  }
}

/** Point TARGET back at the version deployed before the one it points at. */
export async function rollbackApp(target: string): Promise<{ from: string; to: string }> {
  const l = layout(target);
  const live = await current(l);
  if (!live) throw new Error(`${target} is not a deployed app (not a link into ${l.versions}); nothing to roll back`);
  for (const earlier of await chain(l, live)) {
    if (await exists(join(l.versions, earlier))) {
      await switchTo(l, earlier);
      return { from: live, to: earlier };
    }
  }
  throw new Error(`no earlier version of ${target} is kept in ${l.versions}`);
}
