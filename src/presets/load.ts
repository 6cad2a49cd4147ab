// Step 1 of the pipeline: read the preset directory into parsed YAML, file by file.
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { parseYaml, YamlSyntaxError, type ParsedYaml } from './yaml-source.js';
import { PresetError, type Problem } from './problems.js';

export interface PresetFile {
  /** Path as shown to staff in messages (relative to the working directory when inside it). */
  displayPath: string;
  /** File name without `.yml`: the partition or container name. */
  name: string;
  yaml: ParsedYaml;
}

export interface LoadedPresets {
  dir: string;
  site: PresetFile;
  partitions: PresetFile[];
  containers: PresetFile[];
}

export async function loadPresets(dir: string): Promise<LoadedPresets> {
  const problems: Problem[] = [];
  const display = (file: string) => {
    const rel = relative(process.cwd(), file);
    return rel.startsWith('..') ? file : rel;
  };

  const readOne = async (file: string, name: string): Promise<PresetFile | null> => {
    const displayPath = display(file);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      problems.push({ file: displayPath, line: 1, field: '', message: `cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})` });
      return null;
    }
    try {
      return { displayPath, name, yaml: parseYaml(text, displayPath) };
    } catch (error) {
      if (!(error instanceof YamlSyntaxError)) throw error;
      problems.push({ file: displayPath, line: error.line, field: '', message: error.notSyntax ? error.reason : `is not valid YAML: ${error.reason}` });
      return null;
    }
  };

  const readFolder = async (folder: string): Promise<PresetFile[]> => {
    const path = join(dir, folder);
    let entries: string[];
    try {
      entries = (await readdir(path)).filter((f) => f.endsWith('.yml') || f.endsWith('.yaml')).sort();
    } catch {
      problems.push({ file: display(path), line: 1, field: '', message: 'is missing: it must hold one .yml file per entry' });
      return [];
    }
    for (const f of entries.filter((f) => f.endsWith('.yaml'))) {
      problems.push({ file: display(join(path, f)), line: 1, field: '', message: 'must be named *.yml' });
    }
    const files = await Promise.all(
      entries.filter((f) => f.endsWith('.yml')).map((f) => readOne(join(path, f), f.slice(0, -'.yml'.length))),
    );
    return files.filter((f): f is PresetFile => f !== null);
  };

  const [site, partitions, containers] = await Promise.all([
    readOne(join(dir, 'site.yml'), 'site'),
    readFolder('partitions'),
    readFolder('containers'),
  ]);
  if (problems.length > 0 || !site) throw new PresetError(problems);
  return { dir, site, partitions, containers };
}
