// Runs a Ruby program for the test harness with real CRuby.
//
// By default that is CRuby 3.4 compiled to WebAssembly (devDependency
// @ruby/3.4-wasm-wasi, started by ./wasm-ruby.mjs), so tests need no Ruby on
// the machine. Set OOD_JUPYTER_RUBY=/usr/bin/ruby (any ruby binary) to use a
// native Ruby instead — e.g. to compare with the Ruby version a site runs.
//
// A wasm start costs ~1.5 s: callers should batch many cases into one run.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";

export interface RubyResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export interface RubyOptions {
  /** Text for the program's standard input. */
  input?: string;
  /** Working directory of the program. */
  cwd?: string;
}

const WASM_RUNNER = fileURLToPath(new URL("./wasm-ruby.mjs", import.meta.url));

// V8's concurrent and incremental marking crash now and then (segfault or
// "Fatal error ... unreachable code" in MarkCompactCollector) around this large
// wasm instance (seen with Node 20.20): a single-threaded, non-incremental GC
// ran clean in every trial.
export const WASM_NODE_FLAGS = ["--single-threaded-gc", "--no-incremental-marking", "--disable-warning=ExperimentalWarning"];

/** The ruby binary named by OOD_JUPYTER_RUBY, or undefined for wasm Ruby. */
function nativeRuby(): string | undefined {
  const named = process.env.OOD_JUPYTER_RUBY?.trim();
  return named ? named : undefined;
}

async function runNative(ruby: string, scriptPath: string, args: string[], opts: RubyOptions): Promise<RubyResult> {
  const result = await execa(ruby, [scriptPath, ...args], {
    input: opts.input ?? "",
    cwd: opts.cwd,
    reject: false,
    stripFinalNewline: false,
  });
  return { stdout: result.stdout, stderr: result.stderr, exitCode: result.exitCode ?? 1 };
}

async function runWasm(scriptPath: string, args: string[], opts: RubyOptions): Promise<RubyResult> {
  // stdin is not dependable under WASI: hand the input over in a file.
  const scratch = await mkdtemp(path.join(tmpdir(), "wasm-ruby-"));
  try {
    const runnerArgs: string[] = [];
    if (opts.input !== undefined) {
      const inputFile = path.join(scratch, "stdin");
      await writeFile(inputFile, opts.input);
      runnerArgs.push("--stdin-file", inputFile);
    }
    if (opts.cwd !== undefined) runnerArgs.push("--cwd", path.resolve(opts.cwd));
    const result = await execa(
      process.execPath,
      [...WASM_NODE_FLAGS, WASM_RUNNER, ...runnerArgs, path.resolve(scriptPath), ...args],
      { cwd: opts.cwd, reject: false, stripFinalNewline: false, input: "" },
    );
    return { stdout: result.stdout, stderr: result.stderr, exitCode: result.exitCode ?? 1 };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** Runs `scriptPath` with `args` under real CRuby (wasm by default, OOD_JUPYTER_RUBY if set). */
export async function runRuby(scriptPath: string, args: string[], opts: RubyOptions = {}): Promise<RubyResult> {
  const ruby = nativeRuby();
  return ruby ? runNative(ruby, scriptPath, args, opts) : runWasm(scriptPath, args, opts);
}

let description: Promise<string> | undefined;

/** Which Ruby runRuby uses, e.g. "CRuby 3.4.1 (WebAssembly, wasm32-wasi)". Cached. */
export function rubyDescription(): Promise<string> {
  description ??= describe();
  return description;
}

async function describe(): Promise<string> {
  const ruby = nativeRuby();
  const result = ruby
    ? await execa(ruby, ["-e", 'print "CRuby #{RUBY_VERSION} (#{RbConfig.ruby}, #{RUBY_PLATFORM})"'], { reject: false })
    : await execa(process.execPath, [...WASM_NODE_FLAGS, WASM_RUNNER, "--describe"], { reject: false });
  if (result.exitCode !== 0) {
    throw new Error(`cannot start Ruby (${ruby ?? "wasm"}): ${result.stderr}`);
  }
  return result.stdout.trim();
}
