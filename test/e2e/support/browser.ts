// A real browser for the end-to-end suite: Debian's Chromium (/usr/bin/chromium) driven by playwright-core.
// One browser per test file, a fresh context (cookies, storage) per researcher, with the portal's Basic auth
// answered by the context, and everything that went wrong in its pages written down for the failure message.
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page, type Request } from 'playwright-core';
import { repoRoot } from '../../support/presets.js';

export const CHROMIUM = '/usr/bin/chromium';
export const artifactsDir = join(repoRoot, 'test', 'e2e', 'artifacts');

export const chromiumAvailable = () => existsSync(CHROMIUM);

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

/** One HTTP response with status ≥ 400, a request that never got an answer, or a WebSocket that failed. */
export interface Problem {
  kind: 'response' | 'requestfailed' | 'websocket';
  method: string;
  url: string;
  /** HTTP status for responses; the network error text otherwise. */
  status: number | string;
  /** Which tab: the order in which the context opened it (0 = the first). */
  tab: number;
  /** The start of the response's body (Jupyter's JSON error says why), filled in once it has arrived. */
  body?: string;
  /** When it was seen (Date.now()). */
  at: number;
}

export interface Diagnostics {
  console: string[];
  problems: Problem[];
  /** WebSocket URLs the pages opened, with how they ended ("open", "closed", "error: …"). */
  websockets: Map<string, string>;
}

export interface Researcher {
  context: BrowserContext;
  diagnostics: Diagnostics;
  /** Everything collected so far, for a failure message. */
  report(filter?: (p: Problem) => boolean): string;
  close(): Promise<void>;
}

/** Path and query of a URL, with its origin dropped: the lines stay short and the same for both portals. */
export const shortUrl = (url: string) => {
  try {
    const u = new URL(url);
    return `${u.pathname}${u.search}`;
  } catch {
    return url;
  }
};

export const describeProblem = (p: Problem) => `tab ${p.tab}: ${p.status} ${p.kind === 'websocket' ? 'WS' : p.method} ${shortUrl(p.url)}${p.kind === 'response' ? '' : ` (${p.kind})`}${p.body ? ` — ${p.body}` : ''}`;

/**
 * A fresh browser context as one researcher: no cookies, Basic auth for `credentials.origin` only, a
 * 1400×900 window. Console messages, page errors, 4xx/5xx responses, failed requests and WebSocket
 * failures of every tab it opens are collected.
 */
export async function newResearcher(browser: Browser, credentials: { origin: string; username: string; password: string }): Promise<Researcher> {
  const context = await browser.newContext({
    httpCredentials: { username: credentials.username, password: credentials.password, origin: credentials.origin },
    viewport: { width: 1400, height: 900 },
    acceptDownloads: false,
  });
  const diagnostics: Diagnostics = { console: [], problems: [], websockets: new Map() };
  const tabs = new Map<Page, number>();
  const tabOf = (page: Page | null | undefined) => (page ? tabs.get(page) ?? -1 : -1);

  const watch = (page: Page) => {
    if (tabs.has(page)) return;
    tabs.set(page, tabs.size);
    const tab = tabs.get(page)!;
    page.on('console', (m) => diagnostics.console.push(`tab ${tab} [${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => diagnostics.console.push(`tab ${tab} [pageerror] ${e.message}`));
    page.on('websocket', (ws) => {
      diagnostics.websockets.set(ws.url(), 'open');
      ws.on('socketerror', (error) => {
        diagnostics.websockets.set(ws.url(), `error: ${error}`);
        diagnostics.problems.push({ kind: 'websocket', method: 'GET', url: ws.url(), status: String(error), tab, at: Date.now() });
      });
      ws.on('close', () => {
        if (diagnostics.websockets.get(ws.url()) === 'open') diagnostics.websockets.set(ws.url(), 'closed');
      });
    });
  };
  context.on('page', watch);
  // A navigation issued before its frame exists (a new tab from the Connect form) has no frame yet.
  const pageOf = (request: Request) => { try { return request.frame().page(); } catch { return undefined; } };
  context.on('response', (response) => {
    if (response.status() < 400) return;
    const request = response.request();
    const problem: Problem = { kind: 'response', method: request.method(), url: response.url(), status: response.status(), tab: tabOf(pageOf(request)), at: Date.now() };
    diagnostics.problems.push(problem);
    response.text().then((body) => { problem.body = body.replace(/\s+/g, ' ').trim().slice(0, 200); }, () => undefined);
  });
  context.on('requestfailed', (request) => {
    const failure = request.failure()?.errorText ?? 'failed';
    // A navigation replaced by the next one, or a long poll cut by closing the tab: not a fault of the server.
    if (failure === 'net::ERR_ABORTED') return;
    diagnostics.problems.push({ kind: 'requestfailed', method: request.method(), url: request.url(), status: failure, tab: tabOf(pageOf(request)), at: Date.now() });
  });

  return {
    context,
    diagnostics,
    report(filter = () => true) {
      const problems = diagnostics.problems.filter(filter);
      // Chromium reports a refused WebSocket handshake only on the console ("Unexpected response code: 403").
      const wsConsole = diagnostics.console.filter((line) => /WebSocket/i.test(line));
      return [
        `failed requests (${problems.length}):`, ...problems.map((p) => `  ${describeProblem(p)}`),
        ...(wsConsole.length ? ['WebSocket console lines:', ...wsConsole.map((l) => `  ${l}`)] : []),
        `last console lines:`, ...diagnostics.console.slice(-15).map((l) => `  ${l}`),
      ].join('\n');
    },
    close: () => context.close(),
  };
}

/** Screenshot into test/e2e/artifacts/<name>.png (only the element SELECTOR, if given); returns the path. */
export async function screenshot(page: Page, name: string, selector?: string): Promise<string> {
  await mkdir(artifactsDir, { recursive: true });
  const path = join(artifactsDir, `${name}.png`);
  if (selector) await page.locator(selector).screenshot({ path });
  else await page.screenshot({ path, fullPage: false });
  return path;
}
