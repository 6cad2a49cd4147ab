// What each part of `npm run bench` hands back to bench/run.ts: the rows it prints, the goals it
// judges (each PASS or FAIL with the measured figure), and its raw figures for bench/results.json.

export interface Goal {
  /** The goal as the issue states it, e.g. "a 100 × 100 build in < 1 s". */
  name: string;
  measured: number;
  unit: string;
  /** The bound the measured figure is held to. */
  limit: number;
  /** How the figure compares with the bound. */
  compare: '<' | '<=' | '==';
  pass: boolean;
  /** When it fails: why, in one sentence (also in the closing note). */
  why?: string;
}

export interface Section {
  /** A short title, printed above its table. */
  title: string;
  /** A table: the first row is the header. */
  table: string[][];
  goals: Goal[];
  /** Raw figures, written as they are into bench/results.json. */
  data: unknown;
}

export function goal(name: string, measured: number, unit: string, compare: Goal['compare'], limit: number, why?: string): Goal {
  const pass = compare === '<' ? measured < limit : compare === '<=' ? measured <= limit : measured === limit;
  return { name, measured, unit, limit, compare, pass, ...(pass || !why ? {} : { why }) };
}

/** Median, min and max of a list of numbers. */
export function spread(values: number[]): { median: number; min: number; max: number; n: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]!, n: sorted.length };
}
