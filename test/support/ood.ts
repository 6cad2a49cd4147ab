// The TypeScript face of the OOD emulation: renders a batch-connect app with
// real Ruby through ./ood-dashboard.rb (one Ruby process per batch), and
// rebuilds the sbatch command line ood_core's Slurm adapter would run.
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { runRuby } from "./ruby.js";

export const DASHBOARD_SCRIPT = fileURLToPath(new URL("./ood-dashboard.rb", import.meta.url));

/** Site facts the dashboard would know; everything optional. */
export interface OodSettings {
  /** The cluster's job adapter, passed to smart attributes as `fmt` ("slurm"). */
  format?: string;
  /** Clusters the portal has; default: every plainly named cluster in form.yml. */
  clusters?: string[];
  /** What the scheduler answers for auto_queues / auto_accounts / auto_qos / auto_groups. */
  scheduler?: { queues?: string[]; accounts?: string[]; qos?: string[]; groups?: string[] };
  /** "3.1" (default): ids kept as written. "4": ids lower-cased, `.*.swp` not staged. */
  oodVersion?: "3.1" | "4";
  /** Dashboard environment: OOD_PORTAL, RAILS_RELATIVE_URL_ROOT, ENABLE_NATIVE_VNC. */
  env?: Record<string, string>;
  /** "sys" (default), "dev" or "usr": the app token's first part. */
  routerType?: string;
}

/** One Launch click. */
export interface LaunchRequest {
  /** Form fields as the browser would post them; fields not given keep the form's defaults. */
  values?: Record<string, string>;
  /** Stage template/ here (as the dashboard does) after the submit options were computed. */
  stagedRoot?: string;
  sessionId?: string;
  createdAt?: number;
}

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

export interface LaunchResult {
  ok: boolean;
  /**
   * Where it failed: form (app invalid / bad select), submit (submit.yml.erb, cluster, Script), stage (template ERB);
   * uncaught: an exception the dashboard does not rescue (a Ruby SyntaxError in ERB) — its error page, no message;
   * harness: the emulation itself could not go on (e.g. `exit` in ERB).
   */
  failedAt?: "form" | "submit" | "stage" | "uncaught" | "harness";
  /** The message the dashboard would show the researcher. */
  error?: string;
  errorClass?: string;
  /** Every attribute's value as ERB saw it (always Strings). */
  values: Record<string, string>;
  /** Posted ids the controller would not permit (fixed or unknown). */
  ignoredValues: string[];
  sessionId: string;
  stagedRoot: string;
  clusterId?: string;
  /** The merged submit hash (smart attributes + submit.yml.erb), JSON keys. */
  submit?: JsonObject;
  /** submit.batch_connect, with template defaulted to "basic". */
  batchConnect?: JsonObject;
  /** OodCore::Job::Script options after ood_core's coercions (job_name, workdir, output_path, shell_path added). */
  script?: JsonObject;
  /** `script:` keys OodCore::Job::Script does not know: silently dropped by OOD. */
  droppedScriptKeys?: string[];
  /** Files rendered from template/*.erb (absolute paths), when staged. */
  stagedFiles?: string[];
  /** What user_defined_context.json holds, when staged. */
  userContext?: JsonObject;
  /** Anything the app's ERB printed to stdout. */
  printed: string;
}

/** The session card of a running session. */
export interface ViewsRequest {
  /** user_defined_context.json's content; default: read from stagedRoot. */
  userContext?: Record<string, JsonValue>;
  /** connection.yml as a Hash or as YAML text; default: read from stagedRoot. */
  connection?: Record<string, JsonValue> | string;
  jobId?: string;
  stagedRoot?: string;
  createdAt?: number;
  sessionId?: string;
  clusterId?: string;
  /** Job state for `info.status` (default "running"). */
  status?: string;
  /** What the scheduler reports of the job (`info`): seconds run and allowed, node names. */
  info?: { wallclockTime?: number; wallclockLimit?: number; nodes?: string[]; native?: Record<string, string> };
}

export interface ViewsResult {
  ok: boolean;
  /** info.{md,html}.erb output (before OOD's Markdown rendering), or null. */
  infoMd: string | null;
  infoError: string | null;
  completedMd: string | null;
  completedError: string | null;
  /** view.html.erb output (before OOD's Markdown rendering), or null. */
  viewHtml: string | null;
  viewError: string | null;
  printed: string;
}

export type DashboardRequest =
  | ({ kind: "launch"; appDir: string; settings?: OodSettings } & LaunchRequest)
  | ({ kind: "views"; appDir: string; settings?: OodSettings } & ViewsRequest);

/**
 * Runs a mixed batch (launches and views, any apps) in ONE Ruby process.
 * Results come back in request order.
 */
export async function runDashboard(requests: DashboardRequest[], settings: OodSettings = {}): Promise<unknown[]> {
  const input = JSON.stringify({
    settings,
    requests: requests.map((request) => ({ ...request, appDir: path.resolve(request.appDir) })),
  });
  const result = await runRuby(DASHBOARD_SCRIPT, [], { input });
  if (result.exitCode !== 0) {
    throw new Error(`ood-dashboard.rb failed (exit ${result.exitCode}):\n${result.stderr}`);
  }
  const parsed: unknown = JSON.parse(result.stdout);
  if (!Array.isArray(parsed) || parsed.length !== requests.length) {
    throw new Error(`ood-dashboard.rb returned no result per request:\n${result.stdout.slice(0, 2000)}`);
  }
  return parsed;
}

/** Clicks Launch once per request on the app in appDir (one Ruby process). */
export async function renderLaunches(
  appDir: string,
  requests: LaunchRequest[],
  settings: OodSettings = {},
): Promise<LaunchResult[]> {
  const batch = requests.map((request): DashboardRequest => ({ kind: "launch", appDir, ...request }));
  return (await runDashboard(batch, settings)) as LaunchResult[];
}

/** Renders the session card's info.md.erb / completed.md.erb / view.html.erb. */
export async function renderViews(appDir: string, request: ViewsRequest, settings: OodSettings = {}): Promise<ViewsResult> {
  const [result] = (await runDashboard([{ kind: "views", appDir, ...request }], settings)) as ViewsResult[];
  return result!;
}

// ---------------------------------------------------------------------------
// sbatch argv — ood_core v0.29.0 lib/ood_core/job/adapters/slurm.rb#submit
// (same on main), fed by dashboard session.rb#script_options.
// ---------------------------------------------------------------------------

export interface SbatchContext {
  stagedRoot: string;
  /** session.rb#job_name: "sys/dashboard/sys/<app>" on a default portal. */
  jobName: string;
  /** The cluster config's `cluster:` (adds `-M <cluster>` after --parsable). */
  slurmCluster?: string;
}

/** The job name the dashboard gives an app's jobs on a default install. */
export function defaultJobName(appDir: string, env: Record<string, string> = {}): string {
  const appPath = (env.RAILS_RELATIVE_URL_ROOT ?? "/pun/sys/dashboard").replace(/^\/[^/]+\//, "");
  return [env.OOD_PORTAL ?? "", appPath, `sys/${path.basename(path.resolve(appDir))}`].filter((s) => s.trim() !== "").join("/");
}

const isRubyTruthy = (value: unknown): boolean => value !== undefined && value !== null && value !== false;

/** Ruby's #inspect for what JSON can hold (enough for a nested native: entry). */
function rubyInspect(value: unknown): string {
  if (value === null || value === undefined) return "nil";
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(rubyInspect).join(", ")}]`;
  if (typeof value === "object") {
    const pairs = Object.entries(value as Record<string, unknown>).map(([k, v]) => `${JSON.stringify(k)} => ${rubyInspect(v)}`);
    return `{${pairs.join(", ")}}`;
  }
  return String(value);
}

/** Ruby's #to_s. A JSON float like 2.0 arrives as 2 and prints "2" (Ruby: "2.0"). */
function rubyToS(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (typeof value === "string") return value;
  if (Array.isArray(value) || typeof value === "object") return rubyInspect(value);
  return String(value);
}

/** Ruby's #to_i: "12abc" → 12, "1_000" → 1000, "abc" → 0, 2.9 → 2, nil → 0. */
function rubyToI(value: unknown, key: string): number {
  if (value === null || value === undefined) return 0;
  if (typeof value === "number") return Math.trunc(value);
  if (typeof value === "string") {
    const match = /^[\s]*([-+]?)(\d+(?:_\d+)*)/.exec(value);
    if (!match) return 0;
    const digits = Number.parseInt(match[2]!.replaceAll("_", ""), 10);
    return match[1] === "-" ? -digits : digits;
  }
  throw new TypeError(`undefined method 'to_i' for ${rubyInspect(value)} (script.${key})`);
}

/** slurm.rb#seconds_to_duration: "%02d:%02d:%02d" with Ruby's floored division. */
function secondsToDuration(seconds: number): string {
  const floorDiv = (a: number, b: number) => Math.floor(a / b);
  const mod = (a: number, b: number) => ((a % b) + b) % b;
  const two = (n: number) => (n < 0 ? String(n) : String(n).padStart(2, "0"));
  return `${two(floorDiv(seconds, 3600))}:${two(mod(floorDiv(seconds, 60), 60))}:${two(mod(seconds, 60))}`;
}

/** `--begin` wants local time as %C%y-%m-%dT%H:%M:%S. */
function localTimestamp(epochSeconds: number): string {
  const d = new Date(epochSeconds * 1000);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** The script: options as OodCore::Job::Script holds them (session.rb#script_options defaults under them). */
function scriptOptions(submit: Record<string, unknown>, ctx: SbatchContext): Record<string, unknown> {
  const script = submit.script ?? {};
  if (typeof script !== "object" || Array.isArray(script)) {
    throw new TypeError(`undefined method 'to_h' for ${rubyInspect(script)} (submit script:)`);
  }
  const given = Object.fromEntries(Object.entries(script as Record<string, unknown>).filter(([, v]) => v !== null));
  return {
    job_name: ctx.jobName,
    workdir: ctx.stagedRoot,
    output_path: path.posix.join(ctx.stagedRoot, "output.log"),
    shell_path: "/bin/bash",
    ...given,
  };
}

function mailType(started: unknown, terminated: unknown): string[] {
  if (isRubyTruthy(started) && isRubyTruthy(terminated)) return ["--mail-type", "ALL"];
  if (isRubyTruthy(started)) return ["--mail-type", "BEGIN"];
  if (isRubyTruthy(terminated)) return ["--mail-type", "END"];
  if (started === false && terminated === false) return ["--mail-type", "NONE"];
  return [];
}

/** slurm.rb#export_arg: NONE unless the script asks to copy the environment or sets variables. */
function exportArg(environment: unknown, copyEnvironment: unknown): string {
  const names = environment && typeof environment === "object" ? Object.keys(environment) : [];
  const copy = isRubyTruthy(copyEnvironment);
  if (names.length > 0) return copy ? `ALL,${names.join(",")}` : names.join(",");
  return copy ? "ALL" : "NONE";
}

function nativeArgs(native: unknown): string[] {
  if (native === undefined || native === null || native === false) return [];
  if (!Array.isArray(native)) {
    const kind = typeof native === "string" ? "String" : typeof native === "object" ? "Hash" : typeof native;
    throw new TypeError(`no implicit conversion of ${kind} into Array (script.native must be a list)`);
  }
  return native.map(rubyToS);
}

/**
 * The argv (without "sbatch") ood_core's Slurm adapter runs for this submit
 * hash — flags in slurm.rb's order, then `native:` verbatim, then --parsable.
 * The job script itself goes to sbatch on stdin.
 */
export function sbatchArgs(submit: Record<string, unknown>, ctx: SbatchContext): string[] {
  const s = scriptOptions(submit, ctx);
  const has = (key: string) => s[key] !== undefined && s[key] !== null;
  const args: string[] = [];
  if (isRubyTruthy(s.submit_as_hold)) args.push("-H");
  if (has("rerunnable")) args.push(isRubyTruthy(s.rerunnable) ? "--requeue" : "--no-requeue");
  if (has("workdir")) args.push("-D", rubyToS(s.workdir));
  if (has("email")) args.push("--mail-user", (Array.isArray(s.email) ? s.email : [s.email]).map(rubyToS).join(","));
  args.push(...mailType(s.email_on_started, s.email_on_terminated));
  if (has("job_name")) args.push("-J", rubyToS(s.job_name));
  if (has("input_path")) args.push("-i", rubyToS(s.input_path));
  if (has("output_path")) args.push("-o", rubyToS(s.output_path));
  if (has("error_path")) args.push("-e", rubyToS(s.error_path));
  if (has("reservation_id")) args.push("--reservation", rubyToS(s.reservation_id));
  if (has("queue_name")) args.push("-p", rubyToS(s.queue_name));
  if (has("priority")) args.push("--priority", String(rubyToI(s.priority, "priority")));
  if (has("start_time")) args.push("--begin", localTimestamp(rubyToI(s.start_time, "start_time")));
  if (has("accounting_id")) args.push("-A", rubyToS(s.accounting_id));
  if (has("wall_time")) args.push("-t", secondsToDuration(rubyToI(s.wall_time, "wall_time")));
  if (has("job_array_request")) args.push("-a", rubyToS(s.job_array_request));
  if (has("qos")) args.push("--qos", rubyToS(s.qos));
  if (has("gpus_per_node")) args.push("--gpus-per-node", String(rubyToI(s.gpus_per_node, "gpus_per_node")));
  if (has("cores")) args.push("-n", String(rubyToI(s.cores, "cores")));
  args.push("--export", exportArg(s.job_environment, s.copy_environment));
  args.push(...nativeArgs(s.native));
  args.push("--parsable");
  if (ctx.slurmCluster) args.push("-M", ctx.slurmCluster);
  return args;
}

// ---------------------------------------------------------------------------
// The recording runtime stub's log (./recording-runtime.sh).
// ---------------------------------------------------------------------------

export const RECORDING_RUNTIME = fileURLToPath(new URL("./recording-runtime.sh", import.meta.url));

export interface RecordedRun {
  /** argv[0] (the name it was called by) first; UTF-8-decoded. */
  argv: string[];
  /** The same arguments, byte-exact. */
  bytes: Buffer[];
}

/** Reads every call the recording runtime stub logged, in order. */
export async function readRecordedRuns(logPath: string): Promise<RecordedRun[]> {
  const text = await readFile(logPath, "utf8").catch(() => "");
  return text
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => {
      const bytes = (JSON.parse(line) as string[]).map((s) => Buffer.from(s, "latin1"));
      return { argv: bytes.map((b) => b.toString("utf8")), bytes };
    });
}
