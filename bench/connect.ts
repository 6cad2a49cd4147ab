// The Connect part of `npm run bench`: what a researcher waits for, and what their browser downloads,
// from the session card's Connect button to a notebook whose kernel is idle and to a first cell's output.
// Debian's Chromium (playwright-core, as the browser suite drives it), through the suite's Apache portal
// (test/e2e/support/portal.ts: OOD's /node proxy, Host not preserved), OUR session (the app built from
// test/e2e/presets, launched as the end-to-end suite launches it) next to a BARE JupyterLab job (same
// image, node, Slurm resources; configured only with what OOD's portal needs: a hashed password,
// exactly the portal's origin, the /node/HOST/PORT/ base URL, the host's address).
//
// Both sessions are started first and kept for every run; runs alternate ours, bare, ours, bare…, each
// in a fresh browser context (an empty cache): the "first Connect". In the same context, once the
// first has finished, the card's Connect again: the "second Connect" (a warm cache). The whole set runs
// on loopback and on an emulated researcher's link (CDP Network.emulateNetworkConditions).
//
// How Connect is done: the session card's real form (view.html.erb rendered by Ruby), the password
// POSTed to <base>/login, opened in the same tab (the card opens a new one: target="_blank" is dropped,
// so that the page's network conditions hold from the POST on). The bare job lets that POST through
// without an XSRF token the same way ours does (a LoginFormHandler whose check_xsrf_cookie is off).
//
// The portal's Basic auth is sent as an extra header, not with Playwright's httpCredentials: those make
// Playwright intercept every request and turn Chromium's cache off, and the second Connect needs it.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, CDPSession, Page } from 'playwright-core';
import { ServerConnection } from '@jupyterlab/services';
import { buildApp } from '../src/build.js';
import { renderViews, sbatchArgs } from '../test/support/ood.js';
import { repoRoot } from '../test/support/presets.js';
import { chromiumAvailable, launchBrowser } from '../test/e2e/support/browser.js';
import { baseUrlOf, logIn, serverSettings, type Login } from '../test/e2e/support/jupyter.js';
import { NODE_NOT_RUNNING, nodeStatus, TestNode } from '../test/e2e/support/node.js';
import { apacheAvailable, startPortal, type Portal } from '../test/e2e/support/portal.js';
import { outputLog, stageLaunches, submit, waitFor, waitRunning, type Connection } from '../test/e2e/support/session.js';
import { bareAddress, bareJobScript, IMAGE } from './session.js';
import { goal, spread, type Goal, type Section } from './types.js';

/** Runs of each kind on each link (first and second Connect in each). */
const RUNS = Number(process.env.BENCH_CONNECT_RUNS ?? 5);
const RESOURCES = 'cpu partition, 0 GPUs, 1 core, 1 GB';
/** A researcher's link: 20 Mbit/s down, 5 Mbit/s up, 40 ms latency. */
const LINK = { offline: false, latency: 40, downloadThroughput: 2_500_000, uploadThroughput: 625_000 };
const LINK_TEXT = '20 Mbit/s down, 5 Mbit/s up, 40 ms';
const SCREENSHOTS = join(tmpdir(), 'ood-jupyter-bench-connect');
const STEP_TIMEOUT = 60_000;

type Kind = 'ours' | 'bare';
type Link = 'loopback' | 'emulated';

interface Target {
  kind: Kind;
  jobId: string;
  conn: Connection;
  /** The card page with the Connect form, on the portal's origin. */
  cardUrl: string;
  /** The JupyterLab root directory (the host's view): notebooks made by a run are removed after it. */
  hostRoot: string;
  /** Logged in from here, straight to JupyterLab: shutting kernels down between runs. */
  login: Login;
  log: () => Promise<string>;
}

interface Request { url: string; status: number; bytes: number; encoding: string; cached: boolean }
interface Traffic { requests: number; fromCache: number; failed: number; bytes: number; list: Request[] }
interface Connect { launcherMs: number; idleMs: number; outputMs?: number; traffic: Traffic }
interface Run { link: Link; kind: Kind; index: number; first?: Connect; second?: Connect; error?: string; screenshot?: string }

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const median = (values: number[]) => (values.length ? spread(values).median : NaN);
const s2 = (ms: number) => (ms / 1000).toFixed(2);
const kib = (bytes: number) => (bytes / 1024).toFixed(0);
const fmt = (values: number[], show: (n: number) => string) => {
  if (!values.length) return '–';
  const { median: m, min, max } = spread(values);
  return `${show(m)} (${show(min)}–${show(max)})`;
};
const shortUrl = (url: string) => { try { const u = new URL(url); return `${u.pathname}${u.search}`.replace(/^\/node\/[^/]+\/\d+\//, ''); } catch { return url; } };

/** Requests and bytes as Chromium reports them (encodedDataLength: headers and encoded body) while on. */
function recorder(cdp: CDPSession) {
  let on = false;
  let t: Traffic = { requests: 0, fromCache: 0, failed: 0, bytes: 0, list: [] };
  const live = new Map<string, Request>();
  cdp.on('Network.requestWillBeSent', (e) => {
    if (!on || /^(data|blob):/.test(e.request.url)) return;
    const previous = live.get(e.requestId);
    // A redirect: the same request id again; the redirect's own bytes come with it.
    if (previous && e.redirectResponse) {
      previous.status = e.redirectResponse.status;
      previous.bytes = e.redirectResponse.encodedDataLength;
      t.bytes += previous.bytes;
    }
    const request: Request = { url: shortUrl(e.request.url), status: 0, bytes: 0, encoding: '', cached: false };
    live.set(e.requestId, request);
    t.list.push(request);
    t.requests++;
  });
  cdp.on('Network.responseReceived', (e) => {
    const r = live.get(e.requestId);
    if (!r) return;
    r.status = e.response.status;
    r.encoding = Object.entries(e.response.headers).find(([k]) => k.toLowerCase() === 'content-encoding')?.[1] ?? '';
    if (e.response.fromDiskCache || e.response.fromPrefetchCache) r.cached = true;
  });
  cdp.on('Network.requestServedFromCache', (e) => { const r = live.get(e.requestId); if (r) r.cached = true; });
  cdp.on('Network.loadingFinished', (e) => {
    const r = live.get(e.requestId);
    if (!r || !on) return;
    r.bytes = e.encodedDataLength;
    t.bytes += e.encodedDataLength;
  });
  cdp.on('Network.loadingFailed', (e) => { if (live.has(e.requestId) && on) t.failed++; });
  return {
    start() { live.clear(); t = { requests: 0, fromCache: 0, failed: 0, bytes: 0, list: [] }; on = true; },
    stop(): Traffic { on = false; t.fromCache = t.list.filter((r) => r.cached).length; return t; },
  };
}

export async function benchConnect(): Promise<Section[]> {
  const status = await nodeStatus();
  if (!status) throw new Error(NODE_NOT_RUNNING);
  if (!chromiumAvailable()) throw new Error('Chromium is not installed (apt-get install chromium)');
  if (!apacheAvailable()) throw new Error('Apache httpd with mod_lua is not installed (apt-get install apache2 apache2-utils)');
  const node = new TestNode(status);
  const home = status.home;
  const queued = await node.userJobs();
  if (queued.length) throw new Error(`the test node is busy (jobs ${queued.join(', ')} of ${status.user}); run the bench holding flock /tmp/ood-node.lock`);

  const work = await mkdtemp(join(tmpdir(), 'ood-jupyter-bench-connect-'));
  const benchDir = `${home}/bench-connect`;
  const jobs: string[] = [];
  let portal: Portal | null = null;
  let browser: Browser | null = null;
  await rm(SCREENSHOTS, { recursive: true, force: true });
  await mkdir(SCREENSHOTS, { recursive: true });
  try {
    const appDir = join(work, 'app', 'jupyter-apptainer');
    await buildApp(join(repoRoot, 'test/e2e/presets'), appDir);
    portal = await startPortal({ preserveHost: false });
    const origin = portal.origin;
    // JupyterLab restores the researcher's last workspace; every run starts from none (see reset()).
    const workspaces = node.hostPath(`${home}/.jupyter/lab/workspaces`);
    await rm(node.hostPath(benchDir), { recursive: true, force: true });
    for (const d of ['ours', 'bare']) await mkdir(node.hostPath(`${benchDir}/${d}`), { recursive: true });
    await node.chownToUser(benchDir);

    // Both sessions first: ours as OOD launches it, then the bare job with the same resources.
    const [staged] = await stageLaunches(node, appDir, [{
      slurm_partition: 'cpu', container: 'jupyterlab', num_gpus: '0', num_cores: '1', memory_gb: '1', bc_num_hours: '1',
      working_dir: `${benchDir}/ours`, extra_binds: '',
    }]);
    const session = await submit(node, staged!);
    jobs.push(session.jobId);

    const bareDir = `${benchDir}/bare`;
    const password = randomBytes(24).toString('base64url');
    const salt = randomBytes(8).toString('hex');
    const hashed = `sha256:${salt}:${createHash('sha256').update(password + salt).digest('hex')}`;
    const originPattern = origin.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const bareScript = bareJobScript(bareDir, {
      setup: [],
      config: [
        'from jupyter_server.auth.login import LoginFormHandler',
        'class ConnectLogin(LoginFormHandler):',
        '    def check_xsrf_cookie(self):',
        '        return None',
        'c.IdentityProvider.token = ""',
        `c.PasswordIdentityProvider.hashed_password = "${hashed}"`,
        'c.PasswordIdentityProvider.login_handler_class = ConnectLogin',
        `c.ServerApp.allow_origin_pat = r"^${originPattern}\\Z"`,
        // The test node's host name is 127.0.0.1: Jupyter would refuse Host: NODE:PORT from the proxy.
        // On a cluster (a node address that is not loopback) this is Jupyter's own default.
        'c.ServerApp.allow_remote_access = True',
      ],
    });
    const bareJob = await node.sbatch(sbatchArgs(staged!.launch.submit!, { stagedRoot: bareDir, jobName: 'bench/bare-jupyterlab' }), bareScript);
    jobs.push(bareJob);

    const oursConn = await waitRunning(node, session, 180_000);
    const bareHost = node.hostPath(bareDir);
    const bareLog = async () => (existsSync(join(bareHost, 'output.log')) ? readFile(join(bareHost, 'output.log'), 'utf8') : '');
    await waitFor('the bare JupyterLab\'s server file', async () => {
      const runtime = join(bareHost, 'runtime');
      if (existsSync(runtime) && (await readdir(runtime)).some((f) => /^jpserver-\d+\.json$/.test(f))) return true;
      if ((await node.jobState(bareJob)) === '') throw new Error(`the bare job ${bareJob} ended:\n${await bareLog()}`);
      return false;
    }, 180_000, 100);
    const bareConn: Connection = { ...bareAddress(await readFile(join(bareHost, 'config.py'), 'utf8')), password };
    for (const conn of [oursConn, bareConn]) {
      await waitFor('JupyterLab to answer', async () => (await fetch(`${baseUrlOf(conn)}login`).catch(() => null))?.status === 200, 30_000);
    }

    // The card: the app's real view.html.erb, with each session's host, port and password.
    const cardPage = (title: string, view: string) => `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title></head><body><main>${view}</main></body></html>\n`;
    const targets: Target[] = [];
    for (const [kind, conn, jobId, hostRoot, log] of [
      ['ours', oursConn, session.jobId, node.hostPath(`${benchDir}/ours`), () => outputLog(session)],
      ['bare', bareConn, bareJob, bareHost, bareLog],
    ] as const) {
      const views = await renderViews(appDir, { stagedRoot: session.hostRoot, jobId, connection: { host: conn.host, port: conn.port, password: conn.password } });
      if (!views.ok || !views.viewHtml) throw new Error(`view.html.erb did not render: ${views.viewError ?? ''}`);
      const sameTab = views.viewHtml.replace(/\s+target="_blank"/, '');
      if (sameTab === views.viewHtml) throw new Error('view.html.erb\'s Connect form no longer opens a new tab (target="_blank"): look at bench/connect.ts');
      const file = `connect-${kind}.html`;
      await writeFile(join(portal.cardDir, file), cardPage(`Connect (${kind})`, sameTab));
      const login = await logIn(conn);
      if (login.status !== 302) throw new Error(`logging in to the ${kind} session answered ${login.status}`);
      targets.push({ kind, jobId, conn, cardUrl: `${origin}/pun/sys/dashboard/cards/${file}`, hostRoot, login, log });
    }

    /** Shut down every kernel (and its session), forget the workspace, remove the notebooks a run made. */
    const reset = async (target: Target) => {
      const settings = serverSettings(target.login);
      const base = target.login.baseUrl;
      const sessions = (await (await ServerConnection.makeRequest(`${base}api/sessions`, {}, settings)).json()) as Array<{ id: string }>;
      for (const s of sessions) await ServerConnection.makeRequest(`${base}api/sessions/${s.id}`, { method: 'DELETE' }, settings);
      const kernels = (await (await ServerConnection.makeRequest(`${base}api/kernels`, {}, settings)).json()) as Array<{ id: string }>;
      for (const k of kernels) await ServerConnection.makeRequest(`${base}api/kernels/${k.id}`, { method: 'DELETE' }, settings);
      for (const f of existsSync(workspaces) ? await readdir(workspaces) : []) await rm(join(workspaces, f), { recursive: true, force: true });
      for (const f of existsSync(target.hostRoot) ? await readdir(target.hostRoot) : []) {
        if (/\.ipynb$/.test(f) || f === '.ipynb_checkpoints') await rm(join(target.hostRoot, f), { recursive: true, force: true });
      }
    };
    for (const target of targets) await reset(target);

    browser = await launchBrowser();
    const authorization = `Basic ${Buffer.from(`${portal.user}:${portal.password}`).toString('base64')}`;

    /** Connect on the card (already open), then the launcher, a new Python 3 notebook's idle kernel, and
     * (first Connect only) a cell's output. */
    const connect = async (page: Page, rec: ReturnType<typeof recorder>, withCell: boolean, failed: (step: string) => void): Promise<Connect> => {
      const step = async <T>(what: string, fn: () => Promise<T>) => { failed(what); return fn(); };
      const button = page.getByRole('button', { name: 'Connect to JupyterLab' });
      await step('the card\'s Connect button', () => button.waitFor({ state: 'visible', timeout: STEP_TIMEOUT }));
      rec.start();
      const t0 = Date.now();
      await button.click();
      const launcher = page.locator('.jp-Launcher');
      await step('the launcher', () => launcher.waitFor({ state: 'visible', timeout: STEP_TIMEOUT }));
      const launcherAt = Date.now();
      const tile = launcher.locator('.jp-Launcher-section').filter({ has: page.getByRole('heading', { name: 'Notebook' }) }).getByTitle(/^Python 3/).first();
      await step('the Python 3 notebook tile', () => tile.click({ timeout: STEP_TIMEOUT }));
      await step('an idle kernel (status bar: | Idle)', () => page.locator('#jp-main-statusbar').getByText(/\|\s*Idle/).waitFor({ state: 'visible', timeout: STEP_TIMEOUT }));
      const idleAt = Date.now();
      const traffic = rec.stop();
      if (!withCell) return { launcherMs: launcherAt - t0, idleMs: idleAt - t0, traffic };
      const notebook = page.locator('.jp-NotebookPanel').filter({ has: page.locator('.jp-Cell') }).first();
      await step('typing print(6*7) into the first cell', async () => {
        await notebook.locator('.jp-Cell').first().locator('.cm-content').click({ timeout: STEP_TIMEOUT });
        await page.keyboard.insertText('print(6*7)');
        await page.keyboard.press('Shift+Enter');
      });
      await step('the cell\'s output 42', () => notebook.locator('.jp-OutputArea-output').filter({ hasText: /^\s*42\s*$/ }).first().waitFor({ state: 'visible', timeout: STEP_TIMEOUT }));
      return { launcherMs: launcherAt - t0, idleMs: idleAt - t0, outputMs: Date.now() - t0, traffic };
    };

    const runOnce = async (target: Target, link: Link, index: number): Promise<Run> => {
      const run: Run = { link, kind: target.kind, index };
      let where = 'a fresh context';
      let context: BrowserContext | null = null;
      let page: Page | null = null;
      try {
        context = await browser!.newContext({ extraHTTPHeaders: { Authorization: authorization }, viewport: { width: 1400, height: 900 }, acceptDownloads: false });
        page = await context.newPage();
        page.on('dialog', (d) => { void d.accept().catch(() => undefined); });
        const cdp = await context.newCDPSession(page);
        await cdp.send('Network.enable');
        if (link === 'emulated') await cdp.send('Network.emulateNetworkConditions', LINK);
        const rec = recorder(cdp);
        where = 'the card';
        await page.goto(target.cardUrl);
        run.first = await connect(page, rec, true, (s) => { where = `first Connect: ${s}`; });
        // The second Connect: the card again in the same tab, after the first's kernel is gone.
        where = 'back to the card';
        await page.goto(target.cardUrl);
        await reset(target);
        run.second = await connect(page, rec, false, (s) => { where = `second Connect: ${s}`; });
      } catch (error) {
        run.error = `${where}: ${(error as Error).message.split('\n')[0]}`;
        if (page) {
          run.screenshot = join(SCREENSHOTS, `${link}-${target.kind}-${index}.png`);
          await page.screenshot({ path: run.screenshot }).catch(() => { run.screenshot = undefined; });
        }
      } finally {
        await context?.close().catch(() => undefined);
        await reset(target).catch(() => undefined);
      }
      return run;
    };

    const runs: Run[] = [];
    for (const link of ['loopback', 'emulated'] as const) {
      for (let i = 0; i < RUNS; i++) {
        for (const target of targets) {
          const run = await runOnce(target, link, i);
          runs.push(run);
          if (run.error) console.log(`  ${link} ${target.kind} run ${i + 1}: ${run.error}${run.screenshot ? ` (screenshot ${run.screenshot})` : ''}`);
        }
      }
    }
    const failures = runs.filter((r) => r.error);
    const oursLog = failures.length ? (await targets[0]!.log()).split('\n').slice(-15).join('\n') : '';
    const bareTail = failures.length ? (await targets[1]!.log()).split('\n').slice(-15).join('\n') : '';
    return [section(runs, 'loopback'), section(runs, 'emulated', { oursLog, bareTail })];
  } finally {
    await browser?.close().catch(() => undefined);
    for (const id of jobs) await node.scancel(id);
    await portal?.stop().catch(() => undefined);
    for (let i = 0; i < 120 && (await node.userJobs()).some((j) => jobs.includes(j)); i++) await sleep(250);
    await rm(node.hostPath(benchDir), { recursive: true, force: true });
    await rm(node.hostPath(`${home}/.jupyter/lab/workspaces`), { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  }
}

/** The figures of one link: a table of median (min–max) per figure, ours and bare, and its goals. */
function section(all: Run[], link: Link, logs?: { oursLog: string; bareTail: string }): Section {
  const runs = all.filter((r) => r.link === link);
  const ok = (kind: Kind) => runs.filter((r) => r.kind === kind && r.first && r.second && !r.error);
  const col = (kind: Kind, pick: (r: Run) => number | undefined) => ok(kind).map(pick).filter((v): v is number => v !== undefined && Number.isFinite(v));
  const rows: Array<[string, (r: Run) => number | undefined, (n: number) => string]> = [
    ['first Connect → launcher visible, s', (r) => r.first?.launcherMs, s2],
    ['→ idle kernel of a new notebook, s', (r) => r.first?.idleMs, s2],
    ['→ first cell\'s output (print(6*7) → 42), s', (r) => r.first?.outputMs, s2],
    ['first Connect (login POST → idle kernel): requests', (r) => r.first?.traffic.requests, String],
    ['first Connect: KiB transferred', (r) => r.first?.traffic.bytes, kib],
    ['second Connect (same context) → launcher visible, s', (r) => r.second?.launcherMs, s2],
    ['second Connect → idle kernel, s', (r) => r.second?.idleMs, s2],
    ['second Connect: requests (from Chromium\'s cache)', (r) => r.second?.traffic.requests, String],
    ['second Connect: KiB transferred', (r) => r.second?.traffic.bytes, kib],
  ];
  const n = { ours: ok('ours').length, bare: ok('bare').length };
  const table: string[][] = [[`${link === 'loopback' ? 'Loopback' : `Emulated link (${LINK_TEXT})`}: median (min–max)`, `ours (${n.ours} of ${RUNS})`, `bare (${n.bare} of ${RUNS})`, 'ours ÷ bare (medians)']];
  for (const [label, pick, show] of rows) {
    const [o, b] = [col('ours', pick), col('bare', pick)];
    // The second Connect's requests: how many of them Chromium answered from its cache, after a semicolon.
    const cached = (kind: Kind) => (label.startsWith('second Connect: requests') ? `; cache ${fmt(col(kind, (r) => r.second?.traffic.fromCache), String)}` : '');
    table.push([label, `${fmt(o, show)}${cached('ours')}`, `${fmt(b, show)}${cached('bare')}`, (median(o) / median(b)).toFixed(3)]);
  }

  const m = (kind: Kind, pick: (r: Run) => number | undefined) => median(col(kind, pick));
  const goals: Goal[] = [];
  const notMeasured = `not measured: ${runs.filter((r) => r.error).map((r) => `${r.kind} run ${r.index + 1}: ${r.error}`).join('; ') || 'no run completed'}`;
  const idleWhy = () => {
    if (!n.ours || !n.bare) return notMeasured;
    const parts = (kind: Kind) => ({ launcher: m(kind, (r) => r.first?.launcherMs), idle: m(kind, (r) => r.first?.idleMs) });
    const [o, b] = [parts('ours'), parts('bare')];
    const diff = (ms: number) => `${ms >= 0 ? '+' : ''}${s2(ms)} s`;
    const bytes = (kind: Kind) => `${kib(m(kind, (r) => r.first?.traffic.bytes))} KiB in ${m(kind, (r) => r.first?.traffic.requests)} requests`;
    const loading = o.launcher >= o.idle - o.launcher;
    return `ours reaches an idle kernel in ${s2(o.idle)} s, bare in ${s2(b.idle)} s (${diff(o.idle - b.idle)}): `
      + `Connect → launcher ${s2(o.launcher)} s vs ${s2(b.launcher)} s (${diff(o.launcher - b.launcher)}), `
      + `launcher → idle kernel ${s2(o.idle - o.launcher)} s vs ${s2(b.idle - b.launcher)} s (${diff(o.idle - o.launcher - (b.idle - b.launcher))}); `
      + `${loading ? 'loading JupyterLab (Connect → launcher)' : 'the new notebook and its kernel (launcher → idle)'} is most of ours' time `
      + `(${(100 * (loading ? o.launcher : o.idle - o.launcher) / o.idle).toFixed(0)} %); ours downloads ${bytes('ours')}, bare ${bytes('bare')}`;
  };
  const idleRatio = m('ours', (r) => r.first?.idleMs) / m('bare', (r) => r.first?.idleMs);
  if (link === 'loopback') {
    goals.push(goal('loopback: ours ÷ bare ≤ 0.80 to an idle kernel of a new notebook (first Connect, medians)', Number(idleRatio.toFixed(3)), '×', '<=', 0.8, idleWhy()));
  } else {
    goals.push(goal(`emulated link (${LINK_TEXT}): ours ÷ bare ≤ 0.60 to an idle kernel of a new notebook (first Connect, medians)`, Number(idleRatio.toFixed(3)), '×', '<=', 0.6, idleWhy()));
    const bareFirst = m('bare', (r) => r.first?.traffic.bytes);
    const largest = (kind: Kind, which: 'first' | 'second') => {
      const sample = ok(kind)[0]?.[which]?.traffic.list ?? [];
      return [...sample].sort((a, b) => b.bytes - a.bytes).slice(0, 3).map((r) => `${r.url.slice(0, 60)} ${kib(r.bytes)} KiB${r.encoding ? ` (${r.encoding})` : ' (not compressed)'}`).join(', ');
    };
    const firstPct = (100 * m('ours', (r) => r.first?.traffic.bytes)) / bareFirst;
    goals.push(goal('bytes of ours\' first Connect ≤ 35 % of bare\'s first Connect (emulated link, medians)', Number(firstPct.toFixed(1)), '%', '<=', 35,
      n.ours && n.bare ? `ours' first Connect moves ${kib(m('ours', (r) => r.first?.traffic.bytes))} KiB, bare's ${kib(bareFirst)} KiB; ours' largest: ${largest('ours', 'first')}` : notMeasured));
    const secondPct = (100 * m('ours', (r) => r.second?.traffic.bytes)) / bareFirst;
    goals.push(goal('bytes of ours\' second Connect ≤ 5 % of bare\'s first Connect (emulated link, medians)', Number(secondPct.toFixed(2)), '%', '<=', 5,
      n.ours && n.bare ? `ours' second Connect moves ${kib(m('ours', (r) => r.second?.traffic.bytes))} KiB in ${m('ours', (r) => r.second?.traffic.requests)} requests (${m('ours', (r) => r.second?.traffic.fromCache)} from the cache); its largest: ${largest('ours', 'second')}` : notMeasured));
  }
  // Raw figures: every run's times and totals; the requests of each kind's first complete run on the emulated link.
  const listed = new Set<Kind>();
  const data = {
    link: link === 'loopback' ? 'loopback' : LINK, resources: RESOURCES, image: IMAGE, runsPerKind: RUNS,
    runs: runs.map((r) => {
      const keep = link === 'emulated' && !r.error && !listed.has(r.kind) && (listed.add(r.kind), true);
      // One line per request: "STATUS BYTES ENCODING|- cache|net PATH" (the path under the session's base URL).
      const line = (q: Request) => `${q.status} ${q.bytes} ${q.encoding || '-'} ${q.cached ? 'cache' : 'net'} ${q.url}`;
      const strip = (c?: Connect) => (c ? { ...c, traffic: { ...c.traffic, list: keep ? c.traffic.list.map(line) : undefined } } : undefined);
      return { ...r, first: strip(r.first), second: strip(r.second) };
    }),
    ...(logs && (logs.oursLog || logs.bareTail) ? { logsAfterFailures: logs } : {}),
  };
  const failed = runs.filter((r) => r.error).length;
  return {
    title: `Connect in Chromium through the suite's Apache portal (OOD's /node proxy, Host not preserved), ${link === 'loopback' ? 'loopback' : `an emulated link: ${LINK_TEXT} (CDP)`}; `
      + `ours vs a bare JupyterLab job (${IMAGE}, ${RESOURCES}, one session each for all runs), alternating; each run a fresh context, then a second Connect in it`
      + `${failed ? `; ${failed} run(s) failed (screenshots in ${SCREENSHOTS})` : ''}`,
    table, goals, data,
  };
}
