// The job's bash library (app-template/template/jupyter-session.sh) as the unit tests run it: the
// library, messages.sh and inspect-python.py rendered from the bundled presets into a temporary
// directory, and `bash` running a script after sourcing them, in a session directory of its own.
// The container runtime below is a STUB (a shell function): the real one runs in test/e2e.
import { execa } from 'execa';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { renderFromPresets } from '../../src/build.js';
import { bundledPresets } from './presets.js';

/**
 * The temporary directory is under the home directory (root's, 0700 in CI), not /tmp: the library
 * refuses a site cache or overlay under a sticky directory, where anyone could have created it.
 */
export async function jobLibrary(t: { teardown(fn: () => unknown): void }) {
  const base = join(homedir(), '.cache');
  await mkdir(base, { recursive: true, mode: 0o700 });
  const dir = await mkdtemp(join(base, 'ood-jupyter-lib-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  for (const file of await renderFromPresets(bundledPresets)) {
    if (['template/jupyter-session.sh', 'template/messages.sh', 'template/inspect-python.py'].includes(file.path)) {
      await writeFile(join(dir, file.path.slice('template/'.length)), file.content);
    }
  }
  /** Run `script` in bash after sourcing messages.sh and the library, in a session directory of its own. */
  async function bash(script: string, env: Record<string, string> = {}) {
    const session = await mkdtemp(join(dir, 'session-'));
    const result = await execa('bash', ['--norc', '--noprofile', '-c', `source ${dir}/messages.sh; source ${dir}/jupyter-session.sh; ${script}`], {
      cwd: session, reject: false, env: { PATH: '/usr/bin:/bin', ...env }, extendEnv: false,
    });
    return { ...result, output: `${result.stdout}\n${result.stderr}`.trim(), session };
  }
  return { dir, bash };
}

/** A STUB runtime: `exec` answers the probe with $PROBE, `pull` writes a stand-in SIF; calls go to $CALLS. */
export const fakeRuntime = [
  'fake_runtime() {',
  '  case $1 in',
  '    exec) echo probe >>"$CALLS"; printf "%s\\n" "$PROBE" ;;',
  '    pull) echo "pull $4" >>"$CALLS"; sleep "${PULL_SECONDS:-0}"; printf "SIF of %s\\n" "$4" >"$3" ;;',
  '  esac',
  '}',
  'runtime=fake_runtime runtime_args=() gpu_count=0 site_binds=() container_binds=() extra_binds= image_ref=/img.sif',
].join('\n');
export const modernProbe = 'executable=/usr/bin/python3\npython=3.12.3\njupyter_server=2.15.0\njupyterlab=4.2.5\nipykernel=6.29.5\npip=24.0\nuser_site=lib/python3.12/site-packages';
export const bareProbe = 'executable=/usr/bin/python3\npython=3.13.1\njupyter_server=\njupyterlab=\nipykernel=\npip=25.1\nuser_site=lib/python3.13/site-packages';

/** How the job starts JupyterLab: `python3 -m jupyterlab` without the working directory on sys.path
 * (python_module_main in the library). Reviewed text, not read from the library: neighbours-lib.test.ts
 * runs it in a directory with planted modules. */
export const SAFE_MAIN = 'import sys; getattr(sys.flags, "safe_path", False) or sys.path.pop(0); import runpy; runpy.run_module(sys.argv.pop(1), run_name="__main__", alter_sys=True)';
