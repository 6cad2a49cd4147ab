// The whole pipeline, as the CLI and the tests use it:
// load presets → validate → plan → render → write.
import { readFileSync } from 'node:fs';
import { loadPresets } from './presets/load.js';
import { validatePresets, type ValidPresets } from './presets/validate.js';
import { planApp, type AppPlan } from './plan.js';
import { renderApp, type RenderedFile } from './render/render.js';
import { writeApp } from './write.js';

const packageJson = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { name: string; version: string };
export const generator = { name: packageJson.name, version: packageJson.version };

/** Load and validate; throws PresetError listing every problem. */
export async function checkPresets(presetsDir: string): Promise<ValidPresets> {
  return validatePresets(await loadPresets(presetsDir));
}

export async function planFromPresets(presetsDir: string): Promise<AppPlan> {
  return planApp(await checkPresets(presetsDir), generator);
}

export async function renderFromPresets(presetsDir: string): Promise<RenderedFile[]> {
  return renderApp(await planFromPresets(presetsDir));
}

/** Validate and render everything in memory first: nothing is written unless all of it succeeded. */
export async function buildApp(presetsDir: string, outDir: string): Promise<RenderedFile[]> {
  const files = await renderFromPresets(presetsDir);
  await writeApp(outDir, files);
  return files;
}
