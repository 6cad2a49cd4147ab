// Reaching a session's JupyterLab as the Connect button does (POST the password to <base_url>login), then
// driving it with the official Jupyter client, @jupyterlab/services, over HTTP and WebSocket (`ws` on Node 20).
import { PageConfig } from '@jupyterlab/coreutils';
import { KernelManager, ServerConnection, TerminalManager } from '@jupyterlab/services';
import WebSocket from 'ws';
import type { Connection } from './session.js';

export interface Login {
  baseUrl: string;
  status: number;
  location: string | null;
  cookies: Map<string, string>;
}

export const baseUrlOf = (c: Connection) => `http://127.0.0.1:${c.port}/node/${c.host}/${c.port}/`;

function collectCookies(response: Response, jar: Map<string, string>) {
  for (const header of response.headers.getSetCookie()) {
    const [pair] = header.split(';');
    const eq = pair!.indexOf('=');
    jar.set(pair!.slice(0, eq), pair!.slice(eq + 1));
  }
}

/**
 * The form POST the session card's Connect button sends (the password and `next`, no XSRF token), then,
 * as the browser's new tab does, the page it is sent to: that page sets the `_xsrf` cookie.
 */
export async function logIn(c: Connection, password = c.password): Promise<Login> {
  const baseUrl = baseUrlOf(c);
  const basePath = new URL(baseUrl).pathname;
  const response = await fetch(`${baseUrl}login`, {
    method: 'POST', redirect: 'manual',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ password, next: `${basePath}lab` }),
  });
  const cookies = new Map<string, string>();
  collectCookies(response, cookies);
  const location = response.headers.get('location');
  if (response.status === 302 && location) {
    const page = await fetch(new URL(location, baseUrl), { headers: { Cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; ') } });
    collectCookies(page, cookies);
    await page.arrayBuffer();
  }
  return { baseUrl, status: response.status, location, cookies };
}

export const cookieHeader = (login: Login) => [...login.cookies].map(([k, v]) => `${k}=${v}`).join('; ');

/** Server settings for @jupyterlab/services carrying the login cookie and the XSRF header, as a browser would. */
export function serverSettings(login: Login): ServerConnection.ISettings {
  const cookie = cookieHeader(login);
  const xsrf = login.cookies.get('_xsrf') ?? '';
  class CookieWebSocket extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols, { headers: { Cookie: cookie } });
    }
  }
  const fetchWithCookie: typeof fetch = (input, init) => {
    const headers = new Headers(input instanceof Request ? input.headers : undefined);
    new Headers(init?.headers).forEach((value, name) => headers.set(name, value));
    headers.set('Cookie', cookie);
    headers.set('X-XSRFToken', xsrf);
    return fetch(input, { ...init, headers });
  };
  return ServerConnection.makeSettings({
    baseUrl: login.baseUrl,
    wsUrl: login.baseUrl.replace(/^http/, 'ws'),
    appendToken: false,
    fetch: fetchWithCookie,
    WebSocket: CookieWebSocket as unknown as typeof globalThis.WebSocket,
  });
}

/** Start a kernel of `kernelName`, run `code`, and return what it printed. */
export async function runInKernel(login: Login, kernelName: string, code: string): Promise<{ stdout: string; specs: string[]; displayName: string }> {
  const settings = serverSettings(login);
  const manager = new KernelManager({ serverSettings: settings });
  await manager.ready;
  const specsResponse = await ServerConnection.makeRequest(`${login.baseUrl}api/kernelspecs`, {}, settings);
  const specs = (await specsResponse.json()) as { kernelspecs: Record<string, { spec: { display_name: string } }> };
  const kernel = await manager.startNew({ name: kernelName });
  try {
    let stdout = '';
    const future = kernel.requestExecute({ code });
    future.onIOPub = (message) => {
      if (message.header.msg_type === 'stream') stdout += (message.content as { text: string }).text;
      if (message.header.msg_type === 'error') stdout += (message.content as { traceback: string[] }).traceback.join('\n');
    };
    await future.done;
    return { stdout, specs: Object.keys(specs.kernelspecs), displayName: specs.kernelspecs[kernelName]?.spec.display_name ?? '' };
  } finally {
    await kernel.shutdown().catch(() => undefined);
    manager.dispose();
  }
}

/** Open a terminal, type `command`, and return what the terminal printed once a line matches /OK/ (or 20 s passed). */
export async function runInTerminal(login: Login, command: string): Promise<string> {
  // The client asks the page's config whether the server has terminals; in Node there is no page.
  PageConfig.setOption('terminalsAvailable', 'true');
  const manager = new TerminalManager({ serverSettings: serverSettings(login) });
  await manager.ready;
  const terminal = await manager.startNew();
  try {
    let output = '';
    const done = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 20_000);
      terminal.messageReceived.connect((_, message) => {
        if (message.type !== 'stdout') return;
        output += String(message.content?.[0] ?? '');
        if (/TERM-OK-\d+ \S+/.test(output)) { clearTimeout(timer); resolve(); }
      });
    });
    terminal.send({ type: 'stdin', content: [`${command}\r`] });
    await done;
    return output;
  } finally {
    await terminal.shutdown().catch(() => undefined);
    manager.dispose();
  }
}

/** The session's kernelspecs: name → display name. */
export async function kernelSpecs(login: Login): Promise<Record<string, string>> {
  const settings = serverSettings(login);
  const response = await ServerConnection.makeRequest(`${login.baseUrl}api/kernelspecs`, {}, settings);
  const specs = (await response.json()) as { kernelspecs: Record<string, { spec: { display_name: string } }> };
  return Object.fromEntries(Object.entries(specs.kernelspecs).map(([name, s]) => [name, s.spec.display_name]));
}

/** Start a kernel and leave it running, as an open notebook does; returns its id. */
export async function startKernel(login: Login, kernelName = 'python3'): Promise<string> {
  const settings = serverSettings(login);
  const response = await ServerConnection.makeRequest(`${login.baseUrl}api/kernels`, { method: 'POST', body: JSON.stringify({ name: kernelName }) }, settings);
  if (response.status !== 201) throw new Error(`starting a ${kernelName} kernel: HTTP ${response.status} ${await response.text()}`);
  return ((await response.json()) as { id: string }).id;
}
