// The suite's portal front end itself (test/e2e/support/portal.ts: Apache httpd configured like OOD's
// `/node/HOST/PORT` location), against a small backend that answers with what it received. It proves the
// browser test goes through a proxy that behaves as OOD's does, in both Host modes. Needs no test node.
import t from 'tap';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { WebSocketServer, WebSocket } from 'ws';
import { apacheAvailable, startPortal } from './support/portal.js';

if (!apacheAvailable()) {
  const why = 'Apache httpd with mod_lua and htpasswd is not installed (apt-get install apache2 apache2-utils)';
  if (process.env.CI === 'true') t.fail(`${why}: CI must run the portal tests`);
  else t.comment(`SKIPPING the portal tests: ${why}`);
  process.exit(process.env.CI === 'true' ? 1 : 0);
}

const node = hostname();
const backend = http.createServer((req, res) => {
  res.setHeader('Set-Cookie', ['session=abc; Path=/somewhere; Domain=node.internal; HttpOnly', 'other=1']);
  if (req.url?.endsWith('/redirect')) res.setHeader('Location', `http://${node}:${BACKEND_PORT}/node/${node}/${BACKEND_PORT}/lab`);
  res.statusCode = req.url?.endsWith('/redirect') ? 302 : 200;
  res.setHeader('Content-Type', 'application/json');
  res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers }));
});
const sockets = new WebSocketServer({ server: backend });
sockets.on('connection', (socket, req) => {
  socket.send(JSON.stringify({ url: req.url, host: req.headers.host, origin: req.headers.origin }));
  socket.on('message', (data) => socket.send(`echo:${String(data)}`));
});
// Any free port: the node's JupyterLabs and kernels take random ones too.
await new Promise<void>((resolve, reject) => { backend.once('error', reject); backend.listen(0, '127.0.0.1', resolve); });
const BACKEND_PORT = (backend.address() as AddressInfo).port;
t.teardown(() => { sockets.close(); backend.close(); });

for (const preserveHost of [false, true]) {
  t.test(`the /node proxy, Host ${preserveHost ? 'preserved (as with Dex)' : 'not preserved (as without Dex)'}`, async (t) => {
    const portal = await startPortal({ preserveHost });
    t.teardown(() => portal.stop());
    const auth = `Basic ${Buffer.from(`${portal.user}:${portal.password}`).toString('base64')}`;
    const base = `${portal.origin}/node/${node}/${BACKEND_PORT}`;
    const portalHost = new URL(portal.origin).host;

    t.equal((await fetch(`${base}/api/contents`)).status, 401, 'no portal login: 401, nothing reaches the backend');
    t.equal((await fetch(`${portal.origin}/pun/sys/dashboard/cards/x.html`)).status, 401, 'the dashboard side too');

    const response = await fetch(`${base}/api/contents/My%20Notebook.ipynb?content=1`, {
      method: 'POST', headers: { Authorization: auth, Origin: portal.origin }, body: '{}',
    });
    t.equal(response.status, 200);
    const seen = (await response.json()) as { method: string; url: string; headers: Record<string, string> };
    t.equal(seen.url, `/node/${node}/${BACKEND_PORT}/api/contents/My%20Notebook.ipynb?content=1`, 'the FULL path, still encoded, and the query');
    t.equal(seen.method, 'POST');
    t.equal(seen.headers.host, preserveHost ? portalHost : `${node}:${BACKEND_PORT}`,
      preserveHost ? 'Host is the portal\'s' : 'Host is the node\'s HOST:PORT, not the portal\'s');
    t.equal(seen.headers.origin, portal.origin, 'Origin is the browser\'s: the portal');
    t.equal(seen.headers['x-forwarded-proto'], 'http');
    t.equal(seen.headers['x-forwarded-user'], portal.user, 'X-Forwarded-User: the portal\'s user');
    t.equal(seen.headers['x-forwarded-host'], portalHost, 'X-Forwarded-Host: the portal (mod_proxy)');
    t.same(response.headers.getSetCookie(), [`session=abc; Path=/node/${node}/${BACKEND_PORT}; HttpOnly`, `other=1; Path=/node/${node}/${BACKEND_PORT}`],
      'cookies lose their Domain and get Path=/node/HOST/PORT');

    // A notebook named `what?.ipynb`: the encoded "?" must stay part of the path.
    const odd = await fetch(`${base}/api/contents/what%3F%20%23x.ipynb`, { headers: { Authorization: auth } });
    t.equal(((await odd.json()) as { url: string }).url, `/node/${node}/${BACKEND_PORT}/api/contents/what%3F%20%23x.ipynb`, 'encoded ?, space and # stay encoded in the path');

    const redirect = await fetch(`${base}/redirect`, { headers: { Authorization: auth }, redirect: 'manual' });
    t.equal(redirect.status, 302);
    t.equal(redirect.headers.get('location'), `/node/${node}/${BACKEND_PORT}/lab`, 'Location loses its scheme and host');

    const other = await fetch(`${portal.origin}/node/not-a-node.example/${BACKEND_PORT}/`, { headers: { Authorization: auth } });
    t.not(other.status, 200, `a host outside host_regex is not proxied (${other.status})`);

    const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/api/kernels/k1/channels`, { headers: { Authorization: auth, Origin: portal.origin } });
    const messages: string[] = [];
    await new Promise<void>((resolve, reject) => {
      ws.on('message', (data) => {
        messages.push(String(data));
        if (messages.length === 1) ws.send('ping');
        else { ws.close(); resolve(); }
      });
      ws.on('error', reject);
    });
    const hello = JSON.parse(messages[0]!) as { url: string; host: string; origin: string };
    t.equal(hello.url, `/node/${node}/${BACKEND_PORT}/api/kernels/k1/channels`, 'a websocket goes through with the full path');
    t.equal(hello.host, preserveHost ? portalHost : `${node}:${BACKEND_PORT}`, 'with the same Host rule');
    t.equal(hello.origin, portal.origin, 'and the portal as Origin');
    t.equal(messages[1], 'echo:ping', 'both ways');
    t.match(await portal.accessLog(), new RegExp(`POST /node/${node}/${BACKEND_PORT}/api/contents/My( |%20)Notebook\\.ipynb\\?content=1 200`), 'the access log records it');
  });
}
