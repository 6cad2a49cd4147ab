// A problem in the presets, pinned to the file and line a staff member has to edit.

export interface Problem {
  file: string;
  line: number;
  /** Dotted path of the field, e.g. `gpus.max` or `sbatchArgs[1]`; empty for the file as a whole. */
  field: string;
  message: string;
}

export function formatProblem(problem: Problem): string {
  const where = `${problem.file}:${problem.line}`;
  return problem.field ? `${where} ${problem.field}: ${problem.message}` : `${where} ${problem.message}`;
}

export function fieldName(path: ReadonlyArray<PropertyKey>): string {
  return path.reduce<string>((name, part) => {
    if (typeof part === 'number') return `${name}[${part}]`;
    return name ? `${name}.${String(part)}` : String(part);
  }, '');
}

/** Thrown by any step of the pipeline when the presets cannot become an app. */
export class PresetError extends Error {
  constructor(readonly problems: Problem[]) {
    super(problems.map(formatProblem).join('\n'));
  }
}
