// Test helpers for preset directories: copies of the bundled example with textual edits, so each
// test breaks one field the way a staff member would, in a real file.
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
export const bundledPresets = join(repoRoot, 'form-presets');
export const cliPath = join(repoRoot, 'dist', 'cli.js');

export interface Edit {
  /** File inside the preset directory, e.g. `partitions/gpu.yml`. */
  file: string;
  /** Text to replace (must occur exactly once), or null to write `to` as the whole file. */
  from: string | null;
  /** The replacement, or null (with `from: null`) to delete the file. */
  to: string | null;
}

/** A temporary copy of the bundled presets with `edits` applied; remove it with `cleanup`. */
export async function presetCopy(edits: Edit[] = []): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), 'ood-jupyter-presets-'));
  const dir = join(root, 'presets');
  await cp(bundledPresets, dir, { recursive: true });
  for (const edit of edits) {
    const path = join(dir, edit.file);
    if (edit.from === null) {
      if (edit.to === null) await rm(path);
      else await writeFile(path, edit.to);
      continue;
    }
    if (edit.to === null) throw new Error('test edit: a replacement needs a "to" text');
    const text = await readFile(path, 'utf8');
    const count = text.split(edit.from).length - 1;
    if (count !== 1) throw new Error(`test edit: "${edit.from}" occurs ${count} times in ${edit.file}`);
    await writeFile(path, text.replace(edit.from, edit.to));
  }
  return { dir, cleanup: () => rm(root, { recursive: true, force: true }) };
}

/** 1-based number of the line of `file` that contains `needle`. */
export async function lineContaining(dir: string, file: string, needle: string): Promise<number> {
  const lines = (await readFile(join(dir, file), 'utf8')).split('\n');
  const index = lines.findIndex((line) => line.includes(needle));
  if (index < 0) throw new Error(`"${needle}" is not in ${file}`);
  return index + 1;
}
