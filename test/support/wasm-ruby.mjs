// Runs one Ruby program with CRuby 3.4 compiled to WebAssembly (the npm package
// @ruby/3.4-wasm-wasi), so the test harness needs no Ruby installed on the machine.
//
//   node --single-threaded-gc --no-incremental-marking wasm-ruby.mjs \
//        [--stdin-file F] [--cwd DIR] SCRIPT.rb [ARGS...]
//   node --single-threaded-gc --no-incremental-marking wasm-ruby.mjs --describe
//
// Why it looks like this:
// - ruby+stdlib.wasm is a *reactor* build: it has no _start, so it cannot be run
//   as a WASI command. RubyVM.instantiateModule (@ruby/wasm-wasi) wires it up and
//   gives us vm.eval; a small Ruby prelude then sets ARGV and `load`s the script.
// - Under WASI, stdin is not dependable, so the caller hands input over in a file
//   (--stdin-file) and the prelude points $stdin at it (STDIN is left alone).
// - WASI cannot see or change Unix permission bits (File.stat(...).mode has no
//   rwx bits, File.chmod raises ENOSYS). The harness has to keep file modes like
//   the dashboard does, so this runner lends Ruby two node:fs calls through the
//   `js` bridge: globalThis.oodHarnessHost.{lstatMode,chmod}.
// - The embedded stdlib lives in a virtual /usr, so the host's /usr is not visible.
// - V8's concurrent/incremental marking crashes intermittently around this
//   module (Node 20); the caller starts node with the flags in ruby.ts
//   (WASM_NODE_FLAGS): --single-threaded-gc --no-incremental-marking.
import { WASI } from "node:wasi";
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { RubyVM } from "@ruby/wasm-wasi";

const require = createRequire(import.meta.url);

function parseCommandLine(argv) {
  const options = { stdinFile: null, cwd: null, describe: false, script: null, args: [] };
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--stdin-file") options.stdinFile = argv[++i];
    else if (arg === "--cwd") options.cwd = argv[++i];
    else if (arg === "--describe") options.describe = true;
    else break;
  }
  options.script = argv[i] ?? null;
  options.args = argv.slice(i + 1);
  return options;
}

async function startRuby() {
  const wasmPath = require.resolve("@ruby/3.4-wasm-wasi/dist/ruby+stdlib.wasm");
  const module = await WebAssembly.compile(fs.readFileSync(wasmPath));
  const wasi = new WASI({
    version: "preview1",
    args: ["ruby"],
    env: process.env,
    preopens: { "/": "/" },
    returnOnExit: true,
  });
  const { vm } = await RubyVM.instantiateModule({ module, wasip1: wasi });
  return vm;
}

// What the Ruby side reads through `JS.global[:oodHarnessHost]`.
globalThis.oodHarnessHost = {
  lstatMode: (path) => fs.lstatSync(path).mode & 0o7777,
  chmod: (path, mode) => fs.chmodSync(path, mode),
  request: null,
};

// The prelude: everything it needs comes from oodHarnessHost.request (a JSON
// string), so no value is ever spliced into Ruby source text.
const PRELUDE = String.raw`
# Grow the wasm memory once, up front: malloc otherwise grows it 64 KiB at a
# time, and Node 20's V8 answers every grow with a full GC ("external memory
# pressure") — hundreds of them, most of the run time. The freed buffer stays
# in malloc's free list for the program to use.
reserve = String.new(capacity: Integer(ENV.fetch("WASM_RUBY_RESERVE_MB", "256")) << 20)
reserve.clear
reserve = nil
require "js"
require "json"
request = JSON.parse(JS.global[:oodHarnessHost][:request].to_s)
if request["describe"]
  $stdout.print("CRuby #{RUBY_VERSION} (WebAssembly, #{RUBY_PLATFORM})\n")
  $stdout.flush
  0
else
  exit_code = 0
  begin
    # Not $stdin.reopen: renumbering onto fd 0 makes libuv abort later
    # (uv__close: fd > STDERR_FILENO). So STDIN stays the real fd 0.
    $stdin = File.open(request["stdinFile"]) if request["stdinFile"]
    Dir.chdir(request["cwd"]) if request["cwd"]
    ARGV.replace(request["args"])
    $PROGRAM_NAME = request["script"]
    load request["script"]
  rescue SystemExit => e
    exit_code = e.status
  rescue Exception => e
    $stderr.print(e.full_message(highlight: false))
    exit_code = 1
  end
  $stdout.flush
  $stderr.flush
  exit_code
end
`;

// Ruby runs in a worker thread only to get a bigger native stack: on the main
// thread's 8 MiB, ruby.wasm's C recursion overflows (a segfault) on ordinary
// programs. The worker writes to the real stdout/stderr through WASI.
const RUBY_STACK_MB = Number(process.env.WASM_RUBY_STACK_MB || 64);

async function runInWorker(request) {
  globalThis.oodHarnessHost.request = JSON.stringify(request);
  const vm = await startRuby();
  const code = Number(vm.eval(PRELUDE).toString());
  parentPort.postMessage(Number.isInteger(code) ? code : 1);
}

function main() {
  const options = parseCommandLine(process.argv.slice(2));
  if (!options.describe && !options.script) {
    process.stderr.write("usage: wasm-ruby.mjs [--stdin-file F] [--cwd DIR] SCRIPT.rb [ARGS...]\n");
    process.exit(2);
  }
  const request = {
    describe: options.describe,
    stdinFile: options.stdinFile && path.resolve(options.stdinFile),
    // WASI starts in "/": Ruby must see the caller's working directory.
    cwd: path.resolve(options.cwd ?? process.cwd()),
    script: options.script && path.resolve(options.script),
    args: options.args,
  };
  const worker = new Worker(new URL(import.meta.url), {
    workerData: request,
    resourceLimits: { stackSizeMb: RUBY_STACK_MB },
  });
  let exitCode = 1;
  worker.on("message", (code) => { exitCode = code; });
  worker.on("error", (error) => {
    process.stderr.write(`wasm-ruby: ${error?.stack ?? error}\n`);
  });
  // Exit at once: letting V8 tear the large wasm instance down has been seen
  // to crash (Node 20).
  worker.on("exit", () => process.exit(exitCode));
}

if (isMainThread) main();
else await runInWorker(workerData);
