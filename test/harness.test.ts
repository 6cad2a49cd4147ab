// Proves the test harness itself (test/support): that it renders an app the
// way OOD's dashboard does (real Ruby ERB), builds the sbatch command line
// ood_core's Slurm adapter would, and that the basic-template job wrapper and
// its helpers behave like ood_core's — against the hand-written
// test/fixtures/mini-app and small variants written here.
import t, { type Test } from "tap";
import { execa } from "execa";
import { chmod, cp, lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, stat, symlink, writeFile } from "node:fs/promises";
import { existsSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { rubyDescription, runRuby } from "./support/ruby.js";
import {
  defaultJobName,
  readRecordedRuns,
  RECORDING_RUNTIME,
  renderLaunches,
  runDashboard,
  sbatchArgs,
  type LaunchResult,
  type ViewsResult,
} from "./support/ood.js";
import { basicTemplateOptions, jobScript, JOB_SCRIPT_SHELLCHECK_EXCLUDES } from "./support/basic-template.js";

const MINI_APP = fileURLToPath(new URL("./fixtures/mini-app", import.meta.url));

const scratch = await mkdtemp(path.join(os.tmpdir(), "ood-harness-"));
t.teardown(() => rm(scratch, { recursive: true, force: true }));

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

type AppFiles = Record<string, string | { text: string; mode: number }>;

/** Writes a throw-away app: form.yml & co. given as text (optionally with a mode). */
async function writeApp(name: string, files: AppFiles): Promise<string> {
  const dir = path.join(scratch, "apps", name);
  for (const [relative, content] of Object.entries(files)) {
    const file = path.join(dir, relative);
    await mkdir(path.dirname(file), { recursive: true });
    const { text, mode } = typeof content === "string" ? { text: content, mode: 0o644 } : content;
    await writeFile(file, text);
    await chmod(file, mode);
  }
  return dir;
}

const modeOf = async (file: string) => (await lstat(file)).mode & 0o7777;
const octal = (mode: number) => mode.toString(8).padStart(4, "0");

/** Wait until `predicate` holds, polling; false on time-out. */
async function waitFor(predicate: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await predicate()) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}

/** A real TCP listener on 127.0.0.1, and a port nothing listens on. */
async function listeningPort(): Promise<{ port: number; freePort: number; close: () => Promise<void> }> {
  const server = net.createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, "0.0.0.0", resolve));
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const freePort = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return {
    port: (server.address() as net.AddressInfo).port,
    freePort,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

// ---------------------------------------------------------------------------
// Variant apps, each showing one dashboard behaviour.
// ---------------------------------------------------------------------------

// `partition` is an Enumerable method: fine in submit.yml.erb (an OpenStruct),
// a trap in template/*.erb (SessionContext). An unknown name in the template
// context raises; the same typo in submit.yml.erb renders as empty.
const TRAP_APP = await writeApp("trap-app", {
  "form.yml": [
    "cluster: c1",
    "form: [partition, num_gpus]",
    "attributes:",
    "  partition: { widget: select, options: [[CPU, cpu], [GPU, gpu]] }",
    "  num_gpus: { widget: number_field, value: 1 }",
  ].join("\n"),
  "submit.yml.erb": 'script:\n  queue_name: "<%= partition %>"\n  native: ["--gres=gpu:<%= num_gpu %>"]\n',
  "template/before.sh.erb": "queue='<%= context.partition %>'\ncount='<%= context.count %>'\ngpus='<%= context.num_gpus %>'\n",
  "template/script.sh.erb": { text: "#!/bin/bash\necho hi\n", mode: 0o755 },
});

const TYPO_APP = await writeApp("typo-app", {
  "form.yml": "cluster: c1\nform: [num_gpus]\nattributes:\n  num_gpus: { widget: number_field, value: 1 }\n",
  "submit.yml.erb": "script:\n  queue_name: batch\n",
  "template/before.sh.erb": "gpus=<%= context.num_gpu %>\n",
});

// Smart attributes contribute to script:, submit.yml.erb wins key by key, and
// its native: replaces bc_num_slots' native. `memory:` is no Script key.
const SMART_APP = await writeApp("smart-app", {
  "form.yml": "cluster: c1\nform: [bc_num_hours, bc_num_slots, bc_account, bc_queue, bc_email_on_started]\n",
  "submit.yml.erb": [
    "script:",
    "<%- if bc_num_hours == '99' -%>",
    "  wall_time: 600",
    "<%- end -%>",
    '  native: ["--exclusive"]',
    "  memory: 4G",
  ].join("\n"),
});

const OSTRUCT_APP = await writeApp("ostruct-app", {
  "form.yml": "cluster: c1\nform: [display]\n",
  "submit.yml.erb": "script:\n  queue_name: batch\n",
});

const FORM_ERB_APP = await writeApp("form-erb-app", {
  "form.yml.erb": "cluster: c1\nform: [cores]\nattributes:\n  cores: { widget: number_field, value: <%= 2 * 3 %> }\n",
  "submit.yml.erb": "script:\n  native: ['-c', '<%= cores %>']\n",
});

const FORM_ERB_BROKEN_APP = await writeApp("form-erb-broken-app", {
  "form.yml.erb": "cluster: c1\nform: [cores]\nattributes:\n  cores: { value: <%= num_cores %> }\n",
});

// Ruby that does not parse: Session#save rescues StandardError only.
const SYNTAX_APP = await writeApp("syntax-app", {
  "form.yml": "cluster: c1\nform: [cores]\n",
  "submit.yml.erb": "script:\n  queue_name: <%= cores + %>\n",
});

const NO_CLUSTER_APP = await writeApp("no-cluster-app", {
  "form.yml": "form: [cores]\n",
  "submit.yml.erb": "script:\n  queue_name: batch\n",
});

const MIXED_CASE_APP = await writeApp("mixed-case-app", {
  "form.yml": "cluster: c1\nform: [NumGpus]\nattributes:\n  NumGpus: { widget: number_field, value: 2 }\n",
  // `self.` because a capitalised bare name would be read as a constant.
  "submit.yml.erb": 'script:\n  native: ["--gpus=<%= self.NumGpus %>"]\n',
});

// The mini-app with modes a repository cannot carry (git keeps only 644/755,
// and no directory modes), a plain file and a symlink in template/.
const MODES_APP = path.join(scratch, "apps", "modes-app");
await cp(MINI_APP, MODES_APP, { recursive: true });
await chmod(path.join(MODES_APP, "template"), 0o750);
await chmod(path.join(MODES_APP, "template/before.sh.erb"), 0o640);
await chmod(path.join(MODES_APP, "template/script.sh.erb"), 0o755);
await writeFile(path.join(MODES_APP, "template/notes.txt"), "plain\n");
await chmod(path.join(MODES_APP, "template/notes.txt"), 0o600);
await symlink("notes.txt", path.join(MODES_APP, "template/notes-link"));

// ---------------------------------------------------------------------------
// One Ruby process renders every launch (and the views) below.
// ---------------------------------------------------------------------------

const staged = (name: string) => path.join(scratch, "staged", name);

const LAUNCHES = {
  defaults: { appDir: MINI_APP },
  gpu: { appDir: MINI_APP, values: { node_type: "gpu", num_cores: "4" }, stagedRoot: staged("gpu") },
  forged: { appDir: MINI_APP, values: { site_tag: "forged", nonsense: "x", num_gpus: "2" } },
  tooManyCores: { appDir: MINI_APP, values: { num_cores: "9" }, stagedRoot: staged("too-many-cores") },
  unknownNodeType: { appDir: MINI_APP, values: { node_type: "arm" } },
  hours1_5: { appDir: MINI_APP, values: { bc_num_hours: "1.5" } },
  hoursBlank: { appDir: MINI_APP, values: { bc_num_hours: "" } },
  hoursAbc: { appDir: MINI_APP, values: { bc_num_hours: "abc" } },
  hours48: { appDir: MINI_APP, values: { bc_num_hours: "48" } },
  modes: { appDir: MODES_APP, stagedRoot: staged("modes") },
  trap: { appDir: TRAP_APP, values: { partition: "gpu" }, stagedRoot: staged("trap") },
  typo: { appDir: TYPO_APP, stagedRoot: staged("typo") },
  smart: {
    appDir: SMART_APP,
    values: { bc_num_hours: "3", bc_num_slots: "2", bc_account: "  proj1 ", bc_queue: "debug", bc_email_on_started: "1" },
  },
  smartOverride: { appDir: SMART_APP, values: { bc_num_hours: "99" } },
  ostruct: { appDir: OSTRUCT_APP },
  formErb: { appDir: FORM_ERB_APP },
  formErbBroken: { appDir: FORM_ERB_BROKEN_APP },
  noCluster: { appDir: NO_CLUSTER_APP },
  syntax: { appDir: SYNTAX_APP },
  mixedCase31: { appDir: MIXED_CASE_APP },
  mixedCase4: { appDir: MIXED_CASE_APP, settings: { oodVersion: "4" as const } },
} as const;

const VIEWS = {
  running: {
    appDir: MINI_APP,
    jobId: "4242",
    stagedRoot: "/home/alice/ondemand/data/sys/dashboard/batch_connect/sys/mini-app/output/abc",
    userContext: { node_type: "gpu", num_cores: "4" },
    connection: "host: node07\nport: 31337\npassword: 123456\n",
  },
  queued: { appDir: MINI_APP, jobId: "4243", stagedRoot: path.join(scratch, "never-written"), userContext: { node_type: "cpu" } },
} as const;

const names = Object.keys(LAUNCHES) as (keyof typeof LAUNCHES)[];
const viewNames = Object.keys(VIEWS) as (keyof typeof VIEWS)[];
const started = Date.now();
const rawResults = await runDashboard([
  ...names.map((name) => ({ kind: "launch" as const, ...LAUNCHES[name] })),
  ...viewNames.map((name) => ({ kind: "views" as const, ...VIEWS[name] })),
]);
const batchMs = Date.now() - started;
const launch = Object.fromEntries(names.map((name, i) => [name, rawResults[i] as LaunchResult])) as Record<
  keyof typeof LAUNCHES,
  LaunchResult
>;
const views = Object.fromEntries(viewNames.map((name, i) => [name, rawResults[names.length + i] as ViewsResult])) as Record<
  keyof typeof VIEWS,
  ViewsResult
>;

t.comment(`${await rubyDescription()}: ${rawResults.length} requests rendered in one process in ${batchMs} ms`);

/** The result of a launch that must have succeeded (fails the test otherwise). */
function succeeded(tt: Test, name: keyof typeof LAUNCHES): LaunchResult {
  const result = launch[name];
  tt.equal(result.ok, true, `${name} launched (${result.error ?? "no error"})`);
  return result;
}

// ---------------------------------------------------------------------------
// The dashboard
// ---------------------------------------------------------------------------

t.test("form defaults reach ERB as Strings, the way the browser posts them", async (tt) => {
  const { values } = succeeded(tt, "defaults");
  tt.strictSame(values, {
    cluster: "minicluster", // added from top-level cluster: as a hidden field
    node_type: "cpu", // select without value: its first option
    num_cores: "2", // the Integer 2 from form.yml
    num_gpus: "", // no value: nil.to_s
    bc_num_hours: "1",
    working_dir: "",
    bc_email_on_started: "0", // unchecked check box posts its unchecked value
    site_tag: "mini", // fixed
  });
});

t.test("fixed and unknown ids cannot be posted; the rest can", async (tt) => {
  const result = succeeded(tt, "forged");
  tt.equal(result.values.site_tag, "mini");
  tt.equal(result.values.num_gpus, "2");
  tt.strictSame(result.ignoredValues.sort(), ["nonsense", "site_tag"]);
});

t.test("an exception in submit.yml.erb is the message the researcher sees; nothing is staged", async (tt) => {
  tt.match(launch.tooManyCores, { ok: false, failedAt: "submit", error: 'Cores must be a whole number from 1 to 8, not "9".' });
  tt.notOk(existsSync(staged("too-many-cores")), "no staged root was created");
  tt.match(launch.unknownNodeType, { ok: false, failedAt: "submit", error: 'Unknown node type "arm".' });
});

t.test("bc_num_hours becomes wall_time = value.to_i * 3600 (blank: 1 hour)", async (tt) => {
  const wallTime = (name: keyof typeof LAUNCHES) => (succeeded(tt, name).submit?.script as { wall_time?: number }).wall_time;
  tt.equal(wallTime("defaults"), 3600);
  tt.equal(wallTime("hours1_5"), 3600, '"1.5".to_i is 1');
  tt.equal(wallTime("hoursBlank"), 3600, "blank counts as one hour");
  tt.equal(wallTime("hoursAbc"), 0, '"abc".to_i is 0');
  tt.equal(wallTime("hours48"), 48 * 3600);
  const job = { stagedRoot: "/s", jobName: "j" };
  tt.ok(sbatchArgs(launch.hoursAbc.submit!, job).join(" ").includes("-t 00:00:00"));
  tt.ok(sbatchArgs(launch.hours48.submit!, job).join(" ").includes("-t 48:00:00"));
});

t.test("smart attributes fill script:, submit.yml.erb is merged on top", async (tt) => {
  const smart = succeeded(tt, "smart");
  tt.strictSame(smart.submit?.script, {
    wall_time: 3 * 3600,
    native: ["--exclusive"], // replaces bc_num_slots' ["-N", 2]: arrays are not merged
    accounting_id: "proj1", // stripped
    queue_name: "debug",
    email_on_started: true,
    memory: "4G",
  });
  tt.strictSame(smart.droppedScriptKeys, ["memory"], "OodCore::Job::Script drops unknown keys");
  tt.notOk("memory" in (smart.script ?? {}));
  tt.equal((succeeded(tt, "smartOverride").submit?.script as { wall_time?: number }).wall_time, 600);
  tt.strictSame(
    sbatchArgs(smart.submit!, { stagedRoot: "/s", jobName: "j" }),
    ["-D", "/s", "--mail-type", "BEGIN", "-J", "j", "-o", "/s/output.log", "-p", "debug", "-A", "proj1", "-t", "03:00:00",
      "--export", "NONE", "--exclusive", "--parsable"],
  );
});

t.test("sbatch argv is exactly what ood_core's Slurm adapter builds", async (tt) => {
  const gpu = succeeded(tt, "gpu");
  const jobName = defaultJobName(MINI_APP);
  tt.equal(jobName, "sys/dashboard/sys/mini-app");
  const root = staged("gpu");
  const argv = sbatchArgs(gpu.submit!, { stagedRoot: root, jobName });
  tt.strictSame(argv, [
    "-D", root,
    "-J", "sys/dashboard/sys/mini-app",
    "-o", `${root}/output.log`,
    "-p", "gpu",
    "-t", "01:00:00",
    "--gpus-per-node", "1",
    "--export", "NONE",
    "--cpus-per-task=4", "--mem=16G",
    "--parsable",
  ]);
  tt.strictSame(sbatchArgs(gpu.submit!, { stagedRoot: root, jobName, slurmCluster: "c1" }).slice(-3), ["--parsable", "-M", "c1"]);
  // The Ruby side's own Script coercions agree with the argv's values.
  tt.match(gpu.script, { workdir: root, job_name: jobName, output_path: `${root}/output.log`, queue_name: "gpu", gpus_per_node: 1 });
});

t.test("sbatchArgs coerces like OodCore::Job::Script and fails like the adapter", async (tt) => {
  const job = { stagedRoot: "/s", jobName: "j" };
  // The flags between the session's -D/-J/-o defaults and --export.
  const flags = (script: Record<string, unknown>) => {
    const argv = sbatchArgs({ script }, job);
    return argv.slice(argv.indexOf("/s/output.log") + 1, argv.indexOf("--export"));
  };
  tt.strictSame(flags({ gpus_per_node: "" }), ["--gpus-per-node", "0"], '"".to_i is 0, not "no flag"');
  tt.strictSame(flags({ wall_time: "5400.9" }), ["-t", "01:30:00"]);
  tt.strictSame(flags({ queue_name: null, accounting_id: "a" }), ["-A", "a"], "nil values are compacted away");
  tt.strictSame(sbatchArgs({ script: { email_on_started: false, email_on_terminated: false } }, job).slice(2, 4), ["--mail-type", "NONE"]);
  tt.strictSame(sbatchArgs({ script: { email_on_started: false } }, job).slice(2, 4), ["-J", "j"], "false alone: no --mail-type");
  tt.strictSame(sbatchArgs({ script: { job_environment: { A: "1" }, copy_environment: true } }, job).slice(-3, -1), ["--export", "ALL,A"]);
  tt.strictSame(sbatchArgs({ script: { native: ["-N", 2, true] } }, job).slice(-4), ["-N", "2", "true", "--parsable"]);
  tt.throws(() => sbatchArgs({ script: { native: "--exclusive" } }, job), /no implicit conversion of String into Array/);
});

t.test("staging copies template/ like rsync -rlp and renders *.erb keeping each file's mode", async (tt) => {
  const result = succeeded(tt, "modes");
  const root = staged("modes");
  tt.equal(octal(await modeOf(root)), "0750", "template/'s own mode lands on the staged root");
  tt.equal(octal(await modeOf(path.join(root, "script.sh"))), "0755");
  tt.equal(octal(await modeOf(path.join(root, "before.sh"))), "0640");
  tt.equal(octal(await modeOf(path.join(root, "after.sh"))), "0644");
  tt.equal(octal(await modeOf(path.join(root, "notes.txt"))), "0600");
  tt.equal(await readlink(path.join(root, "notes-link")), "notes.txt", "symlinks stay symlinks");
  const files = (await readdir(root)).sort();
  tt.strictSame(files, ["after.sh", "before.sh", "notes-link", "notes.txt", "script.sh", "user_defined_context.json"]);
  tt.strictSame(result.stagedFiles?.map((f) => path.basename(f)), ["after.sh", "before.sh", "script.sh"]);
  const context = JSON.parse(await readFile(path.join(root, "user_defined_context.json"), "utf8"));
  tt.notOk("site_tag" in context, "fixed attributes are not part of the user context");
  tt.equal(context.node_type, "cpu");
  const before = await readFile(path.join(root, "before.sh"), "utf8");
  tt.ok(before.includes("export MINI_CORES=2\n"), "context.<id> renders the value");
  tt.ok(before.includes(`staged_root=${root}"`), "session.staged_root is in scope");
});

t.test("context is Enumerable: `partition` is Enumerable#partition, not the form value", async (tt) => {
  const trap = succeeded(tt, "trap");
  tt.equal((trap.submit?.script as { queue_name?: string }).queue_name, "gpu", "submit.yml.erb sees the value");
  tt.match((trap.submit?.script as { native?: string[] }).native, ["--gres=gpu:"], "an unknown name in submit.yml.erb renders empty");
  const before = await readFile(path.join(staged("trap"), "before.sh"), "utf8");
  tt.match(before, /^queue='#<Enumerator:0x[0-9a-f]+>'$/m, "<%= context.partition %> prints an Enumerator");
  tt.match(before, /^count='3'$/m, "context.count counts the attributes (cluster, partition, num_gpus)");
  tt.match(before, /^gpus='1'$/m, "an ordinary id still works");
  tt.ok(Array.isArray(trap.userContext?.partition), "user_defined_context.json gets Enumerable's answer too");
});

t.test("an unknown context name fails staging with NoMethodError", async (tt) => {
  tt.match(launch.typo, { ok: false, failedAt: "stage", errorClass: "NoMethodError", error: /undefined method .num_gpu./ });
});

t.test("ids that are OpenStruct methods are refused", async (tt) => {
  tt.match(launch.ostruct, {
    ok: false,
    failedAt: "submit",
    error: "[:display] are keywords that cannot be used as names for form items",
  });
});

t.test("form.yml.erb is rendered with nothing in scope", async (tt) => {
  tt.strictSame((succeeded(tt, "formErb").submit?.script as { native?: unknown }).native, ["-c", "6"]);
  tt.match(launch.formErbBroken, { ok: false, failedAt: "form", error: /^NameError: undefined local variable or method .num_cores./ });
});

t.test("without a cluster the launch fails with the dashboard's message", async (tt) => {
  tt.match(launch.noCluster, { ok: false, failedAt: "submit", error: /^The cluster was never set\./ });
});

t.test("a Ruby syntax error in ERB is not a researcher's message but an uncaught exception", async (tt) => {
  tt.match(launch.syntax, { ok: false, failedAt: "uncaught", errorClass: "SyntaxError" });
});

t.test("OOD 4 lower-cases ids; 3.1 keeps them", async (tt) => {
  tt.strictSame((succeeded(tt, "mixedCase31").submit?.script as { native?: unknown }).native, ["--gpus=2"]);
  tt.strictSame((succeeded(tt, "mixedCase4").submit?.script as { native?: unknown }).native, ["--gpus="]);
});

t.test("session card: info.md.erb with the Session's names, view.html.erb with connection.yml's", async (tt) => {
  const running = views.running;
  tt.equal(running.infoError, null);
  tt.equal(
    running.infoMd,
    "Running on a **gpu** node with 4 cores (job 4242).\n" +
      "Session files: `/home/alice/ondemand/data/sys/dashboard/batch_connect/sys/mini-app/output/abc`\n",
  );
  tt.equal(running.viewError, null);
  tt.ok(running.viewHtml?.includes('action="/node/node07/31337/login"'));
  tt.ok(running.viewHtml?.includes('name="password" value="123456"'), "YAML turns an all-digit password into an Integer; it still renders");
  tt.equal(views.queued.viewHtml, null);
  tt.match(views.queued.viewError, /^Errno::ENOENT: /, "before connection.yml exists, `connect` raises");
  tt.match(views.queued.infoMd, /^Running on a \*\*cpu\*\* node with  cores/, "a missing user_context key is nil");
});

// ---------------------------------------------------------------------------
// ruby.ts
// ---------------------------------------------------------------------------

t.test("runRuby passes arguments, input, working directory and exit status", async (tt) => {
  const script = path.join(scratch, "echo.rb");
  await writeFile(script, 'print ARGV.inspect, "|", $stdin.read, "|", Dir.pwd\n$stderr.print "warned"\nexit 3\n');
  const result = await runRuby(script, ["a b", "$(x)", "#{1}", "é"], { input: "line\n", cwd: scratch });
  tt.equal(result.exitCode, 3);
  tt.equal(result.stdout, `["a b", "$(x)", "\\#{1}", "é"]|line\n|${scratch}`);
  tt.equal(result.stderr, "warned");
});

// ---------------------------------------------------------------------------
// The basic-template wrapper and the recording runtime stub
// ---------------------------------------------------------------------------

const stubBin = path.join(scratch, "stub-bin");
await mkdir(stubBin, { recursive: true });
await symlink(RECORDING_RUNTIME, path.join(stubBin, "apptainer"));
await symlink(RECORDING_RUNTIME, path.join(stubBin, "singularity"));

/** Runs a job script like Slurm would (bash, cwd = staged root), in its own process group. */
function startJob(root: string, script: string, env: Record<string, string> = {}) {
  const scriptFile = path.join(root, "job_script_content.sh");
  writeFileSync(scriptFile, script);
  return execa("bash", [scriptFile], {
    cwd: root,
    reject: false,
    detached: true,
    all: true,
    env: { PATH: `${stubBin}:${process.env.PATH}`, ...env },
    timeout: 60_000,
  });
}

function killGroup(pid: number | undefined) {
  if (pid === undefined) return;
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // already gone
  }
}

t.test("the job script is valid bash and shellcheck-clean", async (tt) => {
  const file = path.join(scratch, "job.sh");
  await writeFile(file, jobScript("/tmp/some session", { connParams: ["base_url"], timeout: 60, scriptWrapper: "module purge\n%s" }));
  tt.equal((await execa("bash", ["-n", file], { reject: false })).exitCode, 0, "bash -n");
  const shellcheck = await execa("shellcheck", ["--version"], { reject: false }).catch(() => undefined);
  if (!shellcheck || shellcheck.exitCode !== 0) {
    tt.comment("shellcheck is not installed: the job script was not linted");
    return;
  }
  const checked = await execa("shellcheck", ["-s", "bash", "-e", JOB_SCRIPT_SHELLCHECK_EXCLUDES.join(","), file], { reject: false });
  tt.equal(checked.exitCode, 0, checked.stdout);
  const plain = path.join(scratch, "plain-job.sh");
  await writeFile(plain, jobScript("/tmp/plain"));
  const checkedPlain = await execa("shellcheck", [plain], { reject: false });
  tt.equal(checkedPlain.exitCode, 0, `without header or wrapper the template's own directives suffice ${checkedPlain.stdout}`);
  const text = await readFile(file, "utf8");
  tt.ok(text.startsWith("#!/bin/bash\n\nmodule purge\n# shellcheck shell=bash\n"), "shebang, empty header, then the wrapper around the body");
  tt.ok(text.includes("\ncd /tmp/some session\n"), "cd unquoted, as ood_core writes it");
  tt.ok(text.includes('echo -e "base_url: $base_url\\nhost: $host\\nport: $port\\npassword: $password" > "/tmp/some session/connection.yml"'));
  tt.ok(text.includes('timeout 60 "/tmp/some session/script.sh" &'));
});

t.test("the wrapper sources before.sh, forks script.sh, waits in after.sh, writes connection.yml 0600", async (tt) => {
  const root = staged("gpu");
  const gpu = launch.gpu;
  tt.equal(gpu.ok, true);
  const log = path.join(scratch, "runtime-gpu.log");
  const job = startJob(root, jobScript(root, basicTemplateOptions(gpu.batchConnect)), {
    RECORDING_RUNTIME_LOG: log,
    RECORDING_RUNTIME_LISTEN_SECONDS: "60",
  });
  const connectionFile = path.join(root, "connection.yml");
  try {
    const appeared = await waitFor(() => existsSync(connectionFile), 45_000);
    tt.ok(appeared, "connection.yml appeared");
    if (!appeared) return;
    tt.equal(octal(await modeOf(connectionFile)), "0600", "written under umask 077");
    const lines = (await readFile(connectionFile, "utf8")).trimEnd().split("\n");
    tt.equal(lines.length, 4);
    const [baseUrl, host, port, password] = lines.map((line) => line.slice(line.indexOf(": ") + 2));
    tt.strictSame(lines.map((line) => line.slice(0, line.indexOf(":"))), ["base_url", "host", "port", "password"]);
    tt.equal(host, os.hostname(), "host=$(hostname)");
    tt.ok(Number(port) >= 20000 && Number(port) <= 40000, `find_port chose ${port} in before.sh's range`);
    tt.match(password, /^[A-Za-z0-9]{24}$/, "create_passwd 24");
    tt.equal(baseUrl, `/node/${host}/${port}/`, "a conn_params name set in before.sh");
    const runs = await readRecordedRuns(log);
    tt.equal(runs.length, 1, "script.sh ran the container runtime once");
    tt.strictSame(runs[0]?.argv.slice(1), [
      "exec", "--cleanenv", "--nv", "mini.sif", "python3", "-m", "jupyterlab", "--no-browser", "--ip=0.0.0.0",
      `--port=${port}`, `--ServerApp.base_url=/node/${host}/${port}/`, `--notebook-dir=${process.env.HOME}`,
    ]);
  } finally {
    killGroup(job.pid);
  }
  const finished = await job;
  tt.match(finished.all, /before\.sh: port=\d+ cores=4 /, "before.sh was sourced (its variables reached script.sh and connection.yml)");
  tt.match(finished.all, /after\.sh: \S+ is up/, "after.sh waited until the fake JupyterLab listened");
});

t.test("a timed-out script.sh ends the job through clean_up 1", async (tt) => {
  const root = staged("timeout");
  await mkdir(root, { recursive: true });
  await writeFile(path.join(root, "before.sh"), "port=1234\npassword=pw\n");
  // exec: leave no grandchild behind (clean_up's pkill -P reaches children only).
  await writeFile(path.join(root, "script.sh"), "#!/bin/bash\nexec sleep 30\n");
  await chmod(path.join(root, "script.sh"), 0o755);
  await writeFile(path.join(root, "clean.sh"), 'echo "clean.sh ran"\n');
  const began = Date.now();
  const result = await startJob(root, jobScript(root, { timeout: 1 }));
  tt.equal(result.exitCode, 1);
  tt.ok(Date.now() - began < 15_000, "did not wait for the sleep");
  tt.match(result.all, /Script starting\.\.\.[\s\S]*Generating connection YAML file\.\.\.[\s\S]*Cleaning up\.\.\.\nclean\.sh ran/);
  tt.equal(await readFile(path.join(root, "connection.yml"), "utf8"), "host: " + os.hostname() + "\nport: 1234\npassword: pw\n");
});

t.test("a script.sh without the executable bit fails the job as under OOD", async (tt) => {
  const root = staged("not-executable");
  await mkdir(root, { recursive: true });
  await writeFile(path.join(root, "script.sh"), "#!/bin/bash\necho never\n");
  const result = await startJob(root, jobScript(root));
  tt.equal(result.exitCode, 1);
  tt.match(result.all, /script\.sh: Permission denied/);
});

t.test("find_port, port_used, wait_until_port_used against a real listening port", async (tt) => {
  const listener = await listeningPort();
  tt.teardown(listener.close);
  const root = staged("helpers");
  await mkdir(root, { recursive: true });
  const { port, freePort } = listener;
  // before.sh is sourced by the wrapper: it sees the helpers as OOD scripts do.
  await writeFile(
    path.join(root, "before.sh"),
    [
      `port_used "127.0.0.1:${port}"; echo "used=$?"`,
      `port_used "127.0.0.1:${freePort}"; echo "free=$?"`,
      `port_used ":${port}"; echo "empty_host=$?"`,
      `wait_until_port_used "127.0.0.1:${port}" 2; echo "wait_used=$?"`,
      `SECONDS=0; wait_until_port_used "127.0.0.1:${freePort}" 1; echo "wait_free=$? after=$SECONDS"`,
      `p=$(find_port 127.0.0.1 ${port} ${port}); echo "find_taken=$? [$p]"`,
      `p=$(find_port 127.0.0.1 ${freePort} ${freePort}); echo "find_free=$? [$p]"`,
      `p=$(find_port); echo "find_default=$? $p"`,
      `pw=$(create_passwd); echo "pw_default=\${#pw}"`,
      `pw=$(create_passwd 40); echo "pw40=\${#pw} $([[ $pw =~ ^[A-Za-z0-9]+$ ]] && echo alnum)"`,
      `n=$(random_number 5 7); echo "random=$n"`,
      `port=${port}; password=x`,
    ].join("\n") + "\n",
  );
  // script.sh is forked: the helpers are exported, their strategies are not.
  await writeFile(
    path.join(root, "script.sh"),
    `#!/bin/bash\nport_used "127.0.0.1:${port}" 2>/dev/null; echo "forked_without_source_helpers=$?"\n` +
      `source_helpers; port_used "127.0.0.1:${port}"; echo "forked_with_source_helpers=$?"\n`,
  );
  await chmod(path.join(root, "script.sh"), 0o755);
  const result = await startJob(root, jobScript(root));
  tt.equal(result.exitCode, 0, result.all);
  const out = result.all ?? "";
  const line = (key: string) => new RegExp(`^${key}=(.*)$`, "m").exec(out)?.[1];
  tt.equal(line("used"), "0");
  tt.equal(line("free"), "1");
  tt.equal(line("empty_host"), "0", '":PORT" means localhost');
  tt.equal(line("wait_used"), "0");
  tt.match(line("wait_free"), /^1 after=[12]$/, "times out after the given seconds with 1");
  tt.equal(line("find_taken"), "1 []", "no free port in a range of one taken port");
  tt.equal(line("find_free"), `0 [${freePort}]`);
  const chosen = Number(line("find_default")?.split(" ")[1]);
  tt.ok(line("find_default")?.startsWith("0 ") && chosen >= 2000 && chosen <= 65535, "default range 2000..65535");
  tt.equal(line("pw_default"), "8", "create_passwd defaults to 8 characters");
  tt.equal(line("pw40"), "40 alnum");
  tt.match(line("random"), /^[567]$/);
  tt.equal(line("forked_without_source_helpers"), "127");
  tt.equal(line("forked_with_source_helpers"), "0");
});

/** A PATH directory holding only the named tools (plus what the helpers always need). */
async function toolbox(name: string, extra: string[]): Promise<string> {
  const dir = path.join(scratch, "toolbox", name);
  await mkdir(dir, { recursive: true });
  for (const tool of ["bash", "shuf", "sleep", "grep", "tr", "head", ...extra]) {
    const found = await execa("bash", ["-c", `command -v ${tool}`], { reject: false });
    if (found.exitCode !== 0) return "";
    await symlink(found.stdout.trim(), path.join(dir, tool));
  }
  return dir;
}

t.test("port_used falls back over nc, lsof, bash's /dev/tcp (when `strings` shows it), python, python3", async (tt) => {
  const listener = await listeningPort();
  tt.teardown(listener.close);
  const realPython = await execa("python3", ["-c", "import sys; print(sys.executable)"], { reject: false });
  const cases: [string, string[]][] = [
    ["none", []],
    ["lsof", ["lsof"]],
    ["bash-tcp", ["strings"]],
    ["python3", []],
  ];
  const boxes: Record<string, string> = {};
  for (const [name, tools] of cases) boxes[name] = await toolbox(name, tools);
  if (realPython.exitCode === 0 && boxes.python3) {
    await symlink(realPython.stdout.trim(), path.join(boxes.python3, "python3"));
  }
  const root = staged("strategies");
  await mkdir(root, { recursive: true });
  const probes = Object.entries(boxes)
    .filter(([, dir]) => dir !== "")
    .map(
      ([name, dir]) =>
        `PATH="${dir}" port_used "127.0.0.1:${listener.port}"; a=$?; ` +
        `PATH="${dir}" port_used "127.0.0.1:${listener.freePort}"; b=$?; echo "${name}=$a,$b"`,
    );
  probes.push(`PATH="${boxes.none}" wait_until_port_used "127.0.0.1:${listener.port}" 5; echo "wait_none=$?"`);
  await writeFile(path.join(root, "before.sh"), probes.join("\n") + "\nexit 0\n");
  const result = await startJob(root, jobScript(root));
  const out = result.all ?? "";
  tt.match(out, /^none=127,127$/m, "no strategy available: 127");
  tt.match(out, /^commands to find port were either not found or inaccessible\.\ncommand options are lsof, nc/m);
  tt.match(out, /^wait_none=127$/m, "wait_until_port_used gives up at once with 127");
  for (const name of ["lsof", "bash-tcp", "python3"]) {
    if (!boxes[name] || (name === "python3" && realPython.exitCode !== 0)) {
      tt.comment(`${name}: not installed here, not checked`);
      continue;
    }
    tt.match(out, new RegExp(`^${name}=0,1$`, "m"), `${name} alone tells used from free`);
  }
});

t.test("the recording runtime stub logs argv byte-exactly and can play JupyterLab", async (tt) => {
  const log = path.join(scratch, "runtime-bytes.log");
  const weird = ["a b", 'q"uote', "back\\slash", "new\nline", "tab\t", "é ü 日本", "", "$(x) `y`"];
  const invalid = Buffer.from([0x66, 0xff, 0xfe, 0x67]);
  await execa("bash", ["-c", `exec -a apptainer "${RECORDING_RUNTIME}" "$@" "$(printf 'f\\xff\\xfeg')"`, "_", ...weird], {
    env: { RECORDING_RUNTIME_LOG: log },
  });
  const [run] = await readRecordedRuns(log);
  tt.strictSame(run?.argv.slice(1, -1), weird);
  tt.ok(run?.bytes.at(-1)?.equals(invalid), "invalid UTF-8 bytes survive");
  const missing = await execa(RECORDING_RUNTIME, ["exec"], { reject: false, env: { RECORDING_RUNTIME_LOG: "" } });
  tt.equal(missing.exitCode, 70, "refuses to run without a log");

  const { freePort } = await listeningPort().then(async (l) => (await l.close(), l));
  const fake = execa(RECORDING_RUNTIME, ["exec", "x.sif", "python3", "-m", "jupyterlab", `--port=${freePort}`], {
    reject: false,
    env: { RECORDING_RUNTIME_LOG: log, RECORDING_RUNTIME_LISTEN_SECONDS: "20" },
  });
  try {
    const connected = await waitFor(
      () =>
        new Promise<boolean>((resolve) => {
          const socket = net.connect(freePort, "127.0.0.1", () => (socket.destroy(), resolve(true)));
          socket.on("error", () => resolve(false));
        }),
      15_000,
    );
    tt.ok(connected, "the fake JupyterLab accepts connections on --port");
  } finally {
    fake.kill("SIGKILL");
    await fake;
  }
});
