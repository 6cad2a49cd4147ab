// Step 5 of the pipeline: put the rendered app in place, all or nothing.
// Files go to a temporary sibling directory first; only a complete app is renamed into place,
// so a failed build never leaves a half-written app where OOD (or a deploy) would pick it up.
import { chmod, mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { RenderedFile } from './render/render.js';

export async function writeApp(outDir: string, files: RenderedFile[]): Promise<void> {
  const parent = dirname(outDir);
  await mkdir(parent, { recursive: true });
  const staging = await mkdtemp(join(parent, `.${basename(outDir)}.new-`));
  try {
    for (const file of files) {
      const target = join(staging, file.path);
      await mkdir(dirname(target), { recursive: true });
      await writeFile(target, file.content, { mode: file.mode });
      await chmod(target, file.mode); // writeFile's mode is filtered by the umask
    }
    await chmod(staging, 0o755); // mkdtemp makes it 0700; OOD's web server must read the app
    await replaceDirectory(staging, outDir);
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw error;
  }
}

/** Swap `fresh` in at `target`; the previous contents are removed only after the swap. */
async function replaceDirectory(fresh: string, target: string): Promise<void> {
  const previous = `${fresh}.previous`;
  let hadPrevious = true;
  try {
    await rename(target, previous);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    hadPrevious = false;
  }
  try {
    await rename(fresh, target);
  } catch (error) {
    if (hadPrevious) await rename(previous, target);
    throw error;
  }
  if (hadPrevious) await rm(previous, { recursive: true, force: true });
}
