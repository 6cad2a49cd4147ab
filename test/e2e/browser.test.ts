// The researcher's whole path in a real browser (Debian's Chromium) through a real portal (Apache httpd set up
// like OOD's `/node/HOST/PORT` proxy, test/e2e/support/portal.ts): the session card's Connect button, JupyterLab's
// launcher, a Python 3 notebook run and saved, a terminal, and a wrong password refused. Once for a portal that
// does not preserve Host (Origin ≠ Host at JupyterLab, as on portals without Dex) and once for one that does.
// Needs the test node (bash test/node/build.sh && bash test/node/start.sh), apache2 and /usr/bin/chromium.
import t from 'tap';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { load } from 'js-yaml';
import type { Page } from 'playwright-core';
import { buildApp } from '../../src/build.js';
import { renderViews } from '../support/ood.js';
import { repoRoot } from '../support/presets.js';
import { artifactsDir, chromiumAvailable, launchBrowser, newResearcher, screenshot, shortUrl, type Problem, type Researcher } from './support/browser.js';
import { baseUrlOf } from './support/jupyter.js';
import { NODE_NOT_RUNNING, nodeStatus, requireOrExit, TestNode } from './support/node.js';
import { apacheAvailable, startPortal, type Portal } from './support/portal.js';
import { connection, outputLog, stageLaunches, submit, waitFor, type Connection, type Session } from './support/session.js';

const status = await nodeStatus();
requireOrExit(t, !status ? NODE_NOT_RUNNING
  : !chromiumAvailable() ? 'Chromium is not installed (apt-get install chromium)'
  : !apacheAvailable() ? 'Apache httpd with mod_lua is not installed (apt-get install apache2 apache2-utils)' : null, 'the browser suite');
const node = new TestNode(status!);

const appParent = await mkdtemp(join(tmpdir(), 'ood-jupyter-browser-'));
const appDir = join(appParent, 'jupyter-apptainer');
await buildApp(join(repoRoot, 'test/e2e/presets'), appDir);
t.teardown(() => rm(appParent, { recursive: true, force: true }));
const appTitle = String((load(await readFile(join(appDir, 'manifest.yml'), 'utf8')) as { name?: string }).name ?? 'JupyterLab');

// Failure screenshots of an earlier run would pass for this run's.
if (existsSync(artifactsDir)) {
  for (const f of await readdir(artifactsDir)) if (/-FAILED-.*\.png$/.test(f)) await rm(join(artifactsDir, f), { force: true });
}

const browser = await launchBrowser();
t.teardown(() => browser.close());
t.comment(`browser: Chromium ${browser.version()}`);

// What the researcher types into the first cell: single statements, so the editor's auto-indent changes nothing.
const CELL = [
  'import json, os',
  'probe = {"job": os.environ.get("SLURM_JOB_ID", ""), "cuda": os.environ.get("CUDA_VISIBLE_DEVICES", ""), "gpus": sorted(d for d in os.listdir("/dev") if d.startswith("nvidia")), "container": os.path.isdir("/.singularity.d"), "cwd": os.getcwd()}',
  'print("PROBE", json.dumps(probe))',
].join('\n');
const TERMINAL_COMMAND = 'echo TERM-OK-$((6*7)) > term-check.txt';

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** info.md.erb's output is a Markdown list of `- **Label:** value` lines (values already HTML-escaped, a label may
 * hold a `code` span): enough Markdown for that. */
const infoHtml = (md: string | null) => {
  const items = (md ?? '').split('\n').filter((l) => l.startsWith('- '))
    .map((l) => `<li>${l.slice(2).replace(/\*\*(.+?)\*\*/g, '<strong>$1</strong>').replace(/`([^`]+)`/g, '<code>$1</code>')}</li>`);
  return items.length ? `<ul>${items.join('')}</ul>` : '';
};

/** A page that looks like a running session's card on the dashboard's "My Interactive Sessions". */
function cardPage(opts: { session: Session; conn: Connection; infoMd: string | null; viewHtml: string; note?: string }) {
  const { session, conn } = opts;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>My Interactive Sessions - Open OnDemand</title>
<style>
  body { font-family: system-ui, sans-serif; background: #f4f4f4; margin: 0; }
  nav { background: #3b3b3b; color: #fff; padding: 10px 20px; font-size: 18px; }
  main { max-width: 900px; margin: 20px auto; }
  .card { background: #fff; border: 1px solid #c3e6cb; border-radius: 4px; }
  .card-header { background: #d4edda; color: #155724; padding: 10px 16px; display: flex; justify-content: space-between; }
  .card-body { padding: 12px 16px; } .card-body p { margin: 4px 0; }
  .badge { background: #28a745; color: #fff; border-radius: 3px; padding: 2px 8px; font-size: 13px; }
  .btn-primary { background: #007bff; color: #fff; border: 0; border-radius: 4px; padding: 8px 14px; font-size: 15px; cursor: pointer; }
  .note { color: #856404; background: #fff3cd; padding: 6px 10px; margin-bottom: 10px; }
</style></head>
<body><nav>Open OnDemand (browser suite)</nav><main>
<h2>My Interactive Sessions</h2>
${opts.note ? `<div class="note">${esc(opts.note)}</div>` : ''}
<div class="card" id="id_${esc(basename(session.nodeRoot))}">
  <div class="card-header"><strong>${esc(appTitle)} (${esc(session.jobId)})</strong><span class="badge">1 node | 1 core | Running</span></div>
  <div class="card-body">
    <p><strong>Host:</strong> ${esc(conn.host)}</p>
    <p><strong>Created at:</strong> ${esc(new Date(session.submittedAt).toISOString())}</p>
    <p><strong>Session ID:</strong> ${esc(basename(session.nodeRoot))}</p>
    ${infoHtml(opts.infoMd)}
    <hr>
    ${opts.viewHtml}
  </div>
</div>
</main></body></html>
`;
}

// Responses in JupyterLab's tab that are part of normal work, not faults: no favicon; JupyterLab 4 asks for
// jupyter-lsp's status, a server extension the image lacks. And JupyterLab 4.0's rename on first save races its
// own requests about the old name (seen here in about 1 run in 4): the checkpoint of Untitled.ipynb (POST or GET,
// answered 500 "No such file"), and the file browser's listing of the working directory, which Jupyter Server
// answers 404 "file or directory '' does not exist" when Untitled.ipynb vanishes between listing and stat
// (JupyterLab then shows "Directory not found"); only that listing, only while the save is under way. The renamed
// notebook is checked on disk below. The Origin bug looks different: 404 POST api/contents (no file name: creating
// the notebook), 404 PUT lab/api/workspaces/default, WebSocket 403.
const expectedProblem = (saving: { from: number; to: number }) => (p: Problem) => /\/favicon\.ico$/.test(shortUrl(p.url))
  || (p.status === 404 && /\/lsp\/status(\?|$)/.test(shortUrl(p.url)))
  || ((p.status === 404 || p.status === 500) && /\/api\/contents\/Untitled\d*\.ipynb(\/checkpoints)?(\?|$)/.test(shortUrl(p.url)))
  || (p.status === 404 && p.method === 'GET' && /\/api\/contents\?content=1(&|$)/.test(shortUrl(p.url)) && p.at >= saving.from && p.at <= saving.to);

const preserveHostCases = [
  { preserveHost: false, label: 'host-not-preserved', title: 'a portal that does NOT preserve Host (Origin = portal, Host = HOST:PORT)' },
  { preserveHost: true, label: 'host-preserved', title: 'a portal that preserves Host (Origin = Host = the portal)' },
];

for (const mode of preserveHostCases) {
  t.test(`the researcher's path in Chromium through ${mode.title}`, async (t) => {
    const timings: string[] = [];
    const mark = (() => { let last = Date.now(); return (what: string) => { const now = Date.now(); timings.push(`${what} ${now - last}`); last = now; }; })();
    const shots: string[] = [];
    const shot = async (page: Page, name: string, selector?: string) => { shots.push(await screenshot(page, `${mode.label}-${name}`, selector)); };

    const portal: Portal = await startPortal({ preserveHost: mode.preserveHost });
    t.teardown(() => portal.stop());
    mark('portal start');

    // JupyterLab restores the researcher's last workspace (~/.jupyter/lab/workspaces): the other mode's
    // notebook would open instead of the launcher. A researcher's first session, each time.
    await rm(node.hostPath(join(node.status.home, '.jupyter/lab/workspaces')), { recursive: true, force: true });
    const workDir = join(node.status.home, 'browser-e2e', mode.label);
    await rm(node.hostPath(workDir), { recursive: true, force: true });
    await mkdir(node.hostPath(workDir), { recursive: true });
    await node.chownToUser(join(node.status.home, 'browser-e2e'));

    const [staged] = await stageLaunches(node, appDir, [{
      slurm_partition: 'gpu', container: 'jupyterlab', num_gpus: '1', num_cores: '1', memory_gb: '1', bc_num_hours: '1',
      working_dir: workDir, extra_binds: '',
    }]);
    const session = await submit(node, staged!);
    t.teardown(() => node.scancel(session.jobId));
    const log = async () => (await outputLog(session)).split('\n').slice(-30).join('\n');
    await waitFor('the job to run', async () => (await node.jobState(session.jobId)) === 'R', 60_000)
      .catch(async (e) => { throw new Error(`${e.message}\noutput.log:\n${await log()}`); });
    mark('sbatch → running');
    const conn = await waitFor('connection.yml', () => connection(session), 120_000)
      .catch(async (e) => { throw new Error(`${e.message}\noutput.log:\n${await log()}`); });
    mark('→ connection.yml');
    await waitFor('JupyterLab to answer', async () => (await fetch(`${baseUrlOf(conn)}login`).catch(() => null))?.status === 200, 30_000);
    mark('→ JupyterLab answering');
    const labPath = `/node/${conn.host}/${conn.port}/`;

    // Both cards: the real one, and one whose form carries a wrong password.
    const times = await node.jobTimes(session.jobId);
    const [views, wrongViews] = await Promise.all([
      renderViews(appDir, { stagedRoot: session.hostRoot, jobId: session.jobId, ...(times ? { info: times } : {}) }),
      renderViews(appDir, { stagedRoot: session.hostRoot, jobId: session.jobId, connection: { host: conn.host, port: conn.port, password: 'not-the-password' } }),
    ]);
    t.ok(views.ok && views.viewHtml, `view.html.erb renders${views.viewError ? `: ${views.viewError}` : ''}`);
    t.ok(wrongViews.ok && wrongViews.viewHtml, 'and with a wrong password too');
    t.match(views.infoMd, /^- \*\*Time left:\*\* 0 h 5\d min$/m, `the card's time left, from the job's squeue times (${JSON.stringify(times)})`);
    const cardFile = `session-${session.jobId}.html`;
    const wrongCardFile = `session-${session.jobId}-wrong-password.html`;
    await writeFile(join(portal.cardDir, cardFile), cardPage({ session, conn, infoMd: views.infoMd, viewHtml: views.viewHtml ?? '' }));
    await writeFile(join(portal.cardDir, wrongCardFile), cardPage({ session, conn, infoMd: views.infoMd, viewHtml: wrongViews.viewHtml ?? '', note: 'This card\'s Connect form carries a wrong password.' }));
    mark('→ cards rendered');

    const researcher = await newResearcher(browser, { origin: portal.origin, username: portal.user, password: portal.password });
    t.teardown(() => researcher.close());

    /** One step of the path: on failure, a screenshot and everything the browser, the portal and the job said. */
    const step = async <T>(what: string, page: Page, fn: () => Promise<T>, r: Researcher = researcher): Promise<T> => {
      try {
        return await fn();
      } catch (error) {
        const name = `FAILED-${what.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}`;
        await shot(page, name).catch(() => undefined);
        const access = (await portal.accessLog().catch(() => '')).trim().split('\n').slice(-25).join('\n');
        throw new Error([
          `${mode.label}: ${what} failed: ${(error as Error).message.split('\n')[0]}`,
          r.report(),
          `portal access log (last lines):\n${access}`,
          `output.log (last lines):\n${await log()}`,
          `screenshot: ${shots.at(-1)}`,
        ].join('\n'));
      }
    };

    // The session card on the dashboard's origin.
    const card = await researcher.context.newPage();
    const cardUrl = `${portal.origin}/pun/sys/dashboard/cards/${cardFile}`;
    await step('opening the session card', card, async () => {
      const response = await card.goto(cardUrl);
      if (response?.status() !== 200) throw new Error(`${cardUrl}: HTTP ${response?.status()}`);
    });
    const connect = card.getByRole('button', { name: 'Connect to JupyterLab' });
    await step('finding the Connect button', card, () => connect.waitFor({ state: 'visible', timeout: 10_000 }));
    await shot(card, 'card', 'main');

    // Connect: a new tab that POSTs the password to JupyterLab's login page and lands in JupyterLab.
    const connectedAt = Date.now();
    const [lab] = await Promise.all([researcher.context.waitForEvent('page', { timeout: 15_000 }), connect.click()]);
    await step('landing in JupyterLab', lab, () => lab.waitForURL(`${portal.origin}${labPath}lab**`, { timeout: 30_000 }));
    const launcher = lab.locator('.jp-Launcher');
    await step('JupyterLab\'s launcher to appear', lab, () => launcher.waitFor({ state: 'visible', timeout: 90_000 }));
    mark('Connect → launcher visible');
    t.equal(new URL(lab.url()).origin, portal.origin, 'JupyterLab is on the portal\'s origin');
    t.equal(await lab.locator('input[type="password"]').count(), 0, 'no login page: the card\'s password was accepted');

    // The Python 3 notebook tile of the launcher's Notebook section.
    const tile = launcher.locator('.jp-Launcher-section').filter({ has: lab.getByRole('heading', { name: 'Notebook' }) }).getByTitle(/^Python 3/).first();
    await step('clicking the Python 3 notebook tile', lab, () => tile.click({ timeout: 15_000 }));
    const notebook = lab.locator('.jp-NotebookPanel').filter({ has: lab.locator('.jp-Cell') }).first();
    await step('creating the notebook (POST api/contents)', lab, () => notebook.waitFor({ state: 'visible', timeout: 30_000 }));
    await step('the kernel to start and connect (status bar: Idle)', lab,
      () => lab.locator('#jp-main-statusbar').getByText(/\|\s*Idle/).waitFor({ state: 'visible', timeout: 90_000 }));
    mark('→ notebook with an idle kernel');

    const editor = notebook.locator('.jp-Cell').first().locator('.cm-content');
    await step('typing into the first cell', lab, async () => {
      await editor.click();
      await lab.keyboard.insertText(CELL);
      await lab.keyboard.press('Shift+Enter');
    });
    const output = notebook.locator('.jp-OutputArea-output').filter({ hasText: 'PROBE' }).first();
    await step('the cell\'s output (Shift+Enter)', lab, () => output.waitFor({ state: 'visible', timeout: 60_000 }));
    mark('→ cell output');
    const printed = (await output.innerText()).trim();
    const facts = JSON.parse(printed.slice(printed.indexOf('{'))) as { job: string; cuda: string; gpus: string[]; container: boolean; cwd: string };
    t.equal(facts.job, session.jobId, `the notebook's kernel runs in the session's Slurm job (SLURM_JOB_ID=${facts.job})`);
    t.match(facts.cuda, /^[01]$/, `with the GPU Slurm assigned (CUDA_VISIBLE_DEVICES=${facts.cuda})`);
    t.ok(facts.gpus.includes('nvidia0'), `the node's GPU devices are visible (${facts.gpus.join(' ')})`);
    t.equal(facts.container, true, 'inside the container (/.singularity.d exists)');
    t.equal(facts.cwd, workDir, 'in the chosen working directory');
    await shot(lab, 'notebook');
    // JupyterLab 4 otherwise asks every researcher on first start; the app turns the announcements off.
    t.equal(await lab.getByText(/official Jupyter news/i).count(), 0, 'no "receive official Jupyter news?" question');

    // Save. A JupyterLab that asks for a name on first save gets one.
    const currentTab = lab.locator('.lm-DockPanel-tabBar .lm-TabBar-tab.jp-mod-current');
    const saved = lab.locator('.lm-DockPanel-tabBar .lm-TabBar-tab.jp-mod-current:not(.jp-mod-dirty)');
    const dialog = lab.getByRole('dialog');
    const wanted = `browser-check-${mode.label}.ipynb`;
    const saving = { from: Date.now(), to: Infinity };
    await step('saving the notebook (Ctrl+S)', lab, async () => {
      await lab.keyboard.press('ControlOrMeta+s');
      // JupyterLab 4 asks for a name on the first save of an Untitled notebook (a setting; older ones do not).
      const asked = await dialog.waitFor({ state: 'visible', timeout: 5_000 }).then(() => true, () => false);
      if (asked) {
        await dialog.getByRole('textbox').fill(wanted);
        await dialog.locator('.jp-mod-accept').click();
        await dialog.waitFor({ state: 'hidden', timeout: 30_000 });
        await currentTab.filter({ hasText: wanted }).waitFor({ state: 'visible', timeout: 30_000 });
      }
      await saved.waitFor({ state: 'visible', timeout: 30_000 });
      // The file browser settles on the saved name. A listing that lost the race with the rename (see
      // expectedProblem) has shown its "Directory not found" dialog by then: dismiss it, as a researcher would.
      await lab.locator('.jp-DirListing-item').filter({ hasText: asked ? wanted : /\.ipynb/ }).first().waitFor({ state: 'visible', timeout: 30_000 });
      const lostRace = dialog.filter({ hasText: 'Directory not found' });
      if (await lostRace.isVisible()) {
        t.comment('JupyterLab\'s file browser lost the race with the first-save rename ("Directory not found"): dismissed');
        await lostRace.getByRole('button', { name: 'Dismiss' }).click();
        await lostRace.waitFor({ state: 'hidden', timeout: 10_000 });
      }
    });
    saving.to = Date.now();
    mark('→ saved');
    const notebookName = (await currentTab.locator('.lm-TabBar-tabLabel').innerText()).trim();
    t.match(notebookName, /\.ipynb$/, `the notebook's tab: ${notebookName}`);
    const notebookFile = node.hostPath(join(workDir, notebookName));
    const onDisk = await waitFor(`${notebookName} with the cell's code on disk`, async () => {
      const text = existsSync(notebookFile) ? await readFile(notebookFile, 'utf8') : '';
      return text.includes('SLURM_JOB_ID') ? text : null;
    }, 10_000).catch(() => null);
    t.ok(onDisk, `${join(workDir, notebookName)} exists in the working directory with the cell's code`);
    if (onDisk) {
      const saved = JSON.parse(onDisk) as { cells: Array<{ cell_type: string; source: string | string[] }> };
      const source = [saved.cells[0]?.source ?? ''].flat().join('');
      t.equal(source, CELL, 'the saved first cell is exactly what was typed');
    }

    // A terminal from the File menu, then a command that writes a file in the working directory.
    await step('opening a terminal (a new launcher, its Terminal card)', lab, async () => {
      await lab.keyboard.press('ControlOrMeta+Shift+l');
      await lab.locator('.jp-LauncherCard').filter({ hasText: /^Terminal$/ }).last().click({ timeout: 30_000 });
    });
    const terminal = lab.locator('.jp-Terminal').last();
    await step('the terminal to connect', lab, async () => {
      await terminal.locator('.xterm').waitFor({ state: 'visible', timeout: 30_000 });
      await waitFor('the terminal WebSocket', async () => [...researcher.diagnostics.websockets].some(([url, state]) => /\/terminals\/websocket\//.test(url) && state === 'open'), 30_000);
      // xterm.js draws on a canvas (no text in the DOM): the command's file on disk is the proof below,
      // and the screenshot shows the prompt and the command.
    });
    mark('→ terminal');
    const termFile = node.hostPath(join(workDir, 'term-check.txt'));
    await step('running a command in the terminal', lab, async () => {
      await terminal.locator('.xterm').click();
      await lab.keyboard.type(TERMINAL_COMMAND);
      await lab.keyboard.press('Enter');
      await waitFor('term-check.txt', async () => existsSync(termFile) && (await readFile(termFile, 'utf8')).trim() === 'TERM-OK-42', 20_000);
    });
    mark('→ terminal command ran');
    t.equal((await readFile(termFile, 'utf8')).trim(), 'TERM-OK-42', `the terminal's command wrote ${join(workDir, 'term-check.txt')}`);
    await shot(lab, 'terminal');
    mark('→ terminal screenshot');

    // Reading works for the logged-in tab.
    const contents = await lab.evaluate(async (url) => (await fetch(url)).status, `${labPath}api/contents`);
    t.equal(contents, 200, 'the logged-in tab reads api/contents');

    const labProblems = researcher.diagnostics.problems.filter((p) => p.tab === 1 && !expectedProblem(saving)(p));
    const wsErrors = researcher.diagnostics.console.filter((l) => /WebSocket connection .* failed/i.test(l));
    t.same(labProblems.map((p) => `${p.status} ${p.method} ${shortUrl(p.url)}`), [],
      'no 4xx/5xx or failed requests in JupyterLab\'s tab (the Origin bug: 404 POST api/contents, 404 PUT lab/api/workspaces/default, kernel WebSocket 403)',
      { browser: researcher.report((p) => p.tab === 1) });
    t.same(wsErrors, [], 'no refused WebSocket (kernel, terminal, events)', { browser: researcher.report((p) => p.tab === 1) });

    // A wrong password: a fresh researcher (no cookies) clicks Connect on the card with the wrong password.
    const stranger = await newResearcher(browser, { origin: portal.origin, username: portal.user, password: portal.password });
    t.teardown(() => stranger.close());
    const wrongCard = await stranger.context.newPage();
    await step('opening the wrong-password card', wrongCard, async () => {
      const response = await wrongCard.goto(`${portal.origin}/pun/sys/dashboard/cards/${wrongCardFile}`);
      if (response?.status() !== 200) throw new Error(`HTTP ${response?.status()}`);
    }, stranger);
    const [login] = await Promise.all([stranger.context.waitForEvent('page', { timeout: 15_000 }), wrongCard.getByRole('button', { name: 'Connect to JupyterLab' }).click()]);
    await step('JupyterLab\'s login page after a wrong password', login,
      () => login.locator('input[type="password"]').waitFor({ state: 'visible', timeout: 30_000 }), stranger);
    t.equal(new URL(login.url()).pathname, `${labPath}login`, 'the tab stays on JupyterLab\'s login page');
    t.equal(await login.locator('.jp-LabShell').count(), 0, 'no JupyterLab shell behind a wrong password');
    t.ok(stranger.diagnostics.problems.some((p) => p.status === 401 && p.method === 'POST' && shortUrl(p.url) === `${labPath}login`), 'the password POST was answered 401');
    const refused = await login.evaluate(async (url) => {
      const r = await fetch(url, { redirect: 'manual' });
      return { status: r.status, type: r.type };
    }, `${labPath}api/contents`);
    t.ok(refused.status === 403 || refused.type === 'opaqueredirect', `api/contents is refused from that tab (${refused.type} ${refused.status})`);
    await shot(login, 'wrong-password');
    mark('→ wrong password refused');

    const accessLines = (await portal.accessLog()).split('\n').filter((l) => l.includes(labPath)).length;
    t.ok(accessLines > 0, `the portal proxied the session (${accessLines} access-log lines under ${labPath})`);
    t.comment(`timings (ms): ${timings.join(', ')}; Connect → end of the path ${Date.now() - connectedAt}`);
    t.comment(`screenshots: ${shots.join(' ')}`);
  });
}
