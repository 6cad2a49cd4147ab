// Build a generated app into a temporary directory for a test, from the bundled presets or a copy.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from '../../src/build.js';
import { bundledPresets, presetCopy, type Edit } from './presets.js';

export interface BuiltApp {
  appDir: string;
  /** Scratch space beside the app (staged sessions, homes, canary files). */
  workDir: string;
  cleanup(): Promise<void>;
}

export async function builtApp(edits: Edit[] = []): Promise<BuiltApp> {
  const workDir = await mkdtemp(join(tmpdir(), 'ood-jupyter-app-'));
  const presets = edits.length === 0 ? { dir: bundledPresets, cleanup: async () => {} } : await presetCopy(edits);
  const appDir = join(workDir, 'jupyter-apptainer');
  await buildApp(presets.dir, appDir);
  await presets.cleanup();
  return { appDir, workDir, cleanup: () => rm(workDir, { recursive: true, force: true }) };
}
