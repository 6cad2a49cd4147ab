// What a rebuild would change in an app already written (`ood-jupyter diff`, `build --check`): the
// rendered files next to those in the directory, as a unified diff made by diff(1) per file.
import { lstat, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { execa } from 'execa';
import type { RenderedFile } from './render/render.js';

export interface Change {
  path: string;
  kind: 'added' | 'removed' | 'changed' | 'mode';
  /** The unified diff of its content (empty for a change of mode only). */
  diff: string;
  detail?: string;
}

async function filesUnder(dir: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (at: string) => {
    for (const entry of await readdir(at, { withFileTypes: true })) {
      const path = join(at, entry.name);
      if (entry.isDirectory()) await walk(path);
      else found.push(relative(dir, path));
    }
  };
  await walk(dir);
  return found.sort();
}

/** The changes that writing FILES to DIR would make; [] when DIR is up to date. */
export async function compareApp(dir: string, files: RenderedFile[]): Promise<Change[]> {
  let existing: string[] = [];
  try {
    existing = await filesUnder(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const rendered = new Map(files.map((f) => [f.path, f]));
  const scratch = await mkdtemp(join(tmpdir(), 'ood-jupyter-diff-'));
  try {
    const unified = async (path: string, before: string, after: string) => {
      const [a, b] = [join(scratch, 'a'), join(scratch, 'b')];
      await writeFile(a, before);
      await writeFile(b, after);
      const result = await execa('diff', ['-u', '--label', `a/${path}`, '--label', `b/${path}`, a, b], { reject: false });
      if ((result.exitCode ?? 2) > 1) throw new Error(`diff failed: ${result.stderr}`);
      return result.stdout.endsWith('\n') || result.stdout === '' ? result.stdout : `${result.stdout}\n`;
    };
    const changes: Change[] = [];
    for (const path of [...new Set([...existing, ...rendered.keys()])].sort()) {
      const file = rendered.get(path);
      if (!existing.includes(path)) {
        changes.push({ path, kind: 'added', diff: await unified(path, '', file!.content) });
        continue;
      }
      const before = await readFile(join(dir, path), 'utf8');
      if (!file) {
        changes.push({ path, kind: 'removed', diff: await unified(path, before, '') });
        continue;
      }
      if (before !== file.content) changes.push({ path, kind: 'changed', diff: await unified(path, before, file.content) });
      const mode = (await lstat(join(dir, path))).mode & 0o777;
      if (mode !== file.mode) changes.push({ path, kind: 'mode', diff: '', detail: `mode ${mode.toString(8)} → ${file.mode.toString(8)}` });
    }
    return changes;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
