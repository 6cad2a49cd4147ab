// Staff's safe updates, with the built CLI in real processes: `diff` and `build --check` flag a changed
// preset; `deploy` switches a link atomically, and a deploy killed (SIGKILL, through the named test hook
// OOD_JUPYTER_DEPLOY_KILL_AT) at each of its steps leaves the app that was there whole and working;
// `rollback` puts the previous version back.
import t from 'tap';
import { execa } from 'execa';
import { lstat, mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderFromPresets } from '../src/build.js';
import { compareApp } from '../src/compare.js';
import { deploySteps } from '../src/deploy.js';
import { cliPath, presetCopy, repoRoot } from './support/presets.js';

const run = (args: string[], env: Record<string, string> = {}) => execa('node', [cliPath, ...args], { cwd: repoRoot, reject: false, env });
const memory = (from: string, to: string) => ({ file: 'partitions/gpu.yml', from: `  max: ${from}\n`, to: `  max: ${to}\n` });

t.test('diff and build --check flag a changed preset', async (t) => {
  const work = await mkdtemp(join(tmpdir(), 'ood-jupyter-diff-'));
  t.teardown(() => rm(work, { recursive: true, force: true }));
  const { dir, cleanup } = await presetCopy();
  t.teardown(cleanup);
  const app = join(work, 'app');
  t.equal((await run(['build', '--presets', dir, '--out', app])).exitCode, 0);
  const fresh = await run(['build', '--check', '--presets', dir, '--out', app]);
  t.equal(fresh.exitCode, 0, 'just built: up to date');
  t.match(fresh.stdout, /is up to date/);
  t.equal((await run(['diff', '--presets', dir, '--out', app])).stdout, '', 'and no diff');

  const changed = await presetCopy([memory('480', '400')]);
  t.teardown(changed.cleanup);
  const check = await run(['build', '--check', '--presets', changed.dir, '--out', app]);
  t.equal(check.exitCode, 1, 'out of date: exit 1');
  t.match(check.stdout, /^ {2}changed form\.yml$/m);
  t.match(check.stdout, /^ {2}changed submit\.yml\.erb$/m);
  t.match(check.stdout, /out of date: 3 change\(s\)/);
  const diff = await run(['diff', '--presets', changed.dir, '--out', app]);
  t.equal(diff.exitCode, 1);
  t.match(diff.stdout, /^--- a\/form\.yml\n\+\+\+ b\/form\.yml\n@@ /m, 'a unified diff per file');
  t.match(diff.stdout, /^- {10}data-max-memory-gb: 480\n\+ {10}data-max-memory-gb: 400$/m, 'the directive that changed');
  t.equal((await run(['build', '--check', '--presets', dir, '--out', app])).exitCode, 0, 'the app itself is untouched');
});

t.test('deploy killed at each step leaves the old app whole; rollback restores it', async (t) => {
  const work = await mkdtemp(join(tmpdir(), 'ood-jupyter-deploy-'));
  t.teardown(() => rm(work, { recursive: true, force: true }));
  const target = join(work, 'apps/sys/jupyter-apptainer');
  const old = await presetCopy();
  t.teardown(old.cleanup);
  const first = await run(['deploy', '--presets', old.dir, '--to', target]);
  t.equal(first.exitCode, 0, first.stderr);
  t.ok((await lstat(target)).isSymbolicLink(), 'the app directory is a link');
  const oldFiles = await renderFromPresets(old.dir);
  t.same(await compareApp(target, oldFiles), [], 'and it holds the whole app');

  const next = await presetCopy([memory('480', '400')]);
  t.teardown(next.cleanup);
  const newFiles = await renderFromPresets(next.dir);
  const oldLink = await readlink(target);
  for (const step of deploySteps) {
    const killed = await run(['deploy', '--presets', next.dir, '--to', target], { OOD_JUPYTER_DEPLOY_KILL_AT: step });
    t.equal(killed.signal, 'SIGKILL', `killed at "${step}"`);
    const live = await readlink(target);
    if (step === 'switched' || step === 'recorded') {
      t.same(await compareApp(target, newFiles), [], `killed after the switch ("${step}"): the new app, whole`);
      // Put the old one back for the next step's kill.
      t.equal((await run(['rollback', '--to', target])).exitCode, 0, 'rollback');
      t.equal(await readlink(target), oldLink);
    } else {
      t.equal(live, oldLink, `killed at "${step}": the link still names the old version`);
    }
    t.same(await compareApp(target, oldFiles), [], `the old app is whole after a kill at "${step}"`);
  }
  const done = await run(['deploy', '--presets', next.dir, '--to', target]);
  t.equal(done.exitCode, 0, done.stderr);
  t.same(await compareApp(target, newFiles), [], 'a deploy after the kills puts the new app in place');
  const versions = join(work, 'apps/sys/.jupyter-apptainer.versions');
  t.notOk((await readdir(versions)).some((e) => e.startsWith('.')), 'leftovers of the killed deploys are gone');
  t.notOk((await readdir(join(work, 'apps/sys'))).some((e) => e.includes('.link-')), 'and no stray link');
  t.same((await readdir(join(work, 'apps/sys'))).filter((e) => !e.startsWith('.')), ['jupyter-apptainer'], 'the dashboard sees one app (versions are hidden)');

  const back = await run(['rollback', '--to', target]);
  t.equal(back.exitCode, 0, back.stderr);
  t.same(await compareApp(target, oldFiles), [], 'rollback restores the old app');
  t.match(back.stdout, /^Rolled .* back from \S+ to \S+\.$/m);
  const again = await run(['rollback', '--to', target]);
  t.equal(again.exitCode, 1, 'nothing older than the first deploy');
  t.match(again.stderr, /no earlier version/);
  t.match(await readFile(join(versions, 'history'), 'utf8'), /^\S+ -\n/, 'the history: each version and the one live before it');
});

t.test('the first deploy over an app installed by hand keeps it as a version to roll back to', async (t) => {
  const work = await mkdtemp(join(tmpdir(), 'ood-jupyter-deploy-'));
  t.teardown(() => rm(work, { recursive: true, force: true }));
  const target = join(work, 'jupyter-apptainer');
  const old = await presetCopy();
  t.teardown(old.cleanup);
  t.equal((await run(['build', '--presets', old.dir, '--out', target])).exitCode, 0);
  const next = await presetCopy([memory('480', '400')]);
  t.teardown(next.cleanup);
  const deployed = await run(['deploy', '--presets', next.dir, '--to', target]);
  t.equal(deployed.exitCode, 0, deployed.stderr);
  t.match(deployed.stdout, /the version before is kept \(\S+-before-deploy\)/);
  t.equal((await run(['rollback', '--to', target])).exitCode, 0);
  t.same(await compareApp(target, await renderFromPresets(old.dir)), [], 'the hand-installed app is back');
});
