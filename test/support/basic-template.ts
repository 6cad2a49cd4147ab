// The job script Open OnDemand submits for `batch_connect: template: basic`:
// ood_core's OodCore::BatchConnect::Template (v0.29.0, OOD 3.1.16), rebuilt for
// tests from ./basic-template.sh. Same layout as ood_core's #to_s:
//
//   #!/bin/bash            <- the Slurm adapter prepends "#!<shell_path>\n"
//   <header>
//   <script_wrapper with %s replaced by the body>
//   <footer>
//
// The body's paths are the absolute session paths the dashboard passes in
// (session.rb#script_content: work_dir, conn_file, before/script/after/clean_file).
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const BASIC_TEMPLATE_PATH = fileURLToPath(new URL("./basic-template.sh", import.meta.url));

/**
 * shellcheck codes a generated job script trips by its nature, not by a bug:
 * the session's own files are sourced (SC1090/SC1091) and set port, password
 * and conn_params names (SC2154); the helpers run only indirectly (SC2317);
 * ood_core's `cd` has no `|| exit` (SC2164). basic-template.sh disables them
 * at its top, which covers the whole file only while no header or
 * script_wrapper line comes before it.
 */
export const JOB_SCRIPT_SHELLCHECK_EXCLUDES = ["SC1090", "SC1091", "SC2154", "SC2164", "SC2317"];

export interface BasicTemplateOptions {
  /** Extra names written to connection.yml, before host, port, password (batch_connect.conn_params). */
  connParams?: string[];
  /** find_port's default range (batch_connect.min_port / max_port; 2000..65535). */
  minPort?: number;
  maxPort?: number;
  /** create_passwd's default length (batch_connect.password_size; 8). */
  passwordSize?: number;
  /** Bash that sets `host` (batch_connect.set_host; "host=$(hostname)"). */
  setHost?: string;
  /** Run script.sh under `timeout <seconds>` (batch_connect.timeout). */
  timeout?: string | number;
  /** Shell code above / below the body (batch_connect.header / footer). */
  header?: string;
  footer?: string;
  /** Wraps the body; "%s" marks where, "%%" is a literal % (batch_connect.script_wrapper). */
  scriptWrapper?: string;
  /** The shebang's shell (session.rb#shell_path, /bin/bash); null for none. */
  shellPath?: string | null;
}

/** Reads the options a submit.yml.erb gives under `batch_connect:` (snake_case keys). */
export function basicTemplateOptions(batchConnect: Record<string, unknown> | undefined): BasicTemplateOptions {
  const bc = batchConnect ?? {};
  const text = (key: string): string | undefined => (bc[key] === undefined || bc[key] === null ? undefined : String(bc[key]));
  const int = (key: string): number | undefined => (text(key) === undefined ? undefined : Number.parseInt(text(key)!, 10));
  const connParams = bc.conn_params;
  return {
    connParams: connParams === undefined || connParams === null
      ? undefined
      : (Array.isArray(connParams) ? connParams : [connParams]).map(String),
    minPort: int("min_port"),
    maxPort: int("max_port"),
    passwordSize: int("password_size"),
    setHost: text("set_host"),
    timeout: text("timeout"),
    header: text("header"),
    footer: text("footer"),
    scriptWrapper: text("script_wrapper"),
  };
}

/** template.rb#conn_params: the app's names first, then host, port, password; no repeats. */
function connectionParams(extra: string[]): string[] {
  return [...new Set([...extra, "host", "port", "password"])];
}

/** Ruby's `format % body` for the wrapper: "%s" takes the body, "%%" is "%". */
function applyWrapper(wrapper: string, body: string): string {
  return wrapper.replace(/%([%s])/g, (_match, kind: string) => (kind === "%" ? "%" : body));
}

function fillBody(stagedRoot: string, opts: BasicTemplateOptions): string {
  const root = stagedRoot.replace(/\/+$/, "");
  const timeout = opts.timeout === undefined ? "" : String(opts.timeout);
  const scriptFile = path.posix.join(root, "script.sh");
  const values: Record<string, string> = {
    WORK_DIR: root,
    // ood_core joins "name: $name" with a literal backslash-n for `echo -e`.
    CONN_YML: connectionParams(opts.connParams ?? []).map((name) => `${name}: $${name}`).join("\\n"),
    CONN_FILE: path.posix.join(root, "connection.yml"),
    CLEAN_FILE: path.posix.join(root, "clean.sh"),
    BEFORE_FILE: path.posix.join(root, "before.sh"),
    AFTER_FILE: path.posix.join(root, "after.sh"),
    RUN_SCRIPT: timeout === "" ? `"${scriptFile}"` : `timeout ${timeout} "${scriptFile}"`,
    SET_HOST: opts.setHost ?? "host=$(hostname)",
    MIN_PORT: String(opts.minPort ?? 2000),
    MAX_PORT: String(opts.maxPort ?? 65535),
    PASSWORD_SIZE: String(opts.passwordSize ?? 8),
  };
  const template = readFileSync(BASIC_TEMPLATE_PATH, "utf8");
  return template.replace(/@([A-Z_]+)@/g, (match, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`basic-template.sh: unknown placeholder ${match}`);
    return value;
  });
}

/**
 * The complete job script (shebang included) OOD's basic template would submit
 * for a session staged at `stagedRoot`.
 */
export function jobScript(stagedRoot: string, opts: BasicTemplateOptions = {}): string {
  const body = fillBody(stagedRoot, opts);
  const content = `${opts.header ?? ""}\n${applyWrapper(opts.scriptWrapper ?? "%s", body)}\n${opts.footer ?? ""}\n`;
  const shell = opts.shellPath === undefined ? "/bin/bash" : opts.shellPath;
  return shell === null ? content : `#!${shell}\n${content}`;
}
