// The job library's defences against the other researchers on a cluster (SECURITY.md, "The
// neighbours"), function by function in real bash, real python3 and real curl. The test runs as root,
// so "another researcher" is a file given to uid 4321 with chown, or a directory others may write.
// The same attacks with a real second account, real Slurm and Apptainer: test/e2e/neighbours.test.ts.
import t from 'tap';
import { execa } from 'execa';
import type { IncomingHttpHeaders } from 'node:http';
import { createServer } from 'node:https';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, readFile, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { jobLibrary, fakeRuntime, modernProbe, SAFE_MAIN } from './support/job-library.js';

const { dir, bash } = await jobLibrary(t);
const errorLines = (output: string) => output.split('\n').filter((l) => l.startsWith('ood-jupyter: ERROR'));
const OTHER = 4321;
const hex = (c: string) => c.repeat(64);

t.test('closed_path: only the owner and root can change the path or anything above it', async (t) => {
  const base = join(dir, 'closed');
  await mkdir(join(base, 'mine/cache'), { recursive: true });
  await mkdir(join(base, 'open/cache'), { recursive: true });
  await chmod(join(base, 'open'), 0o777);
  await mkdir(join(base, 'sticky/cache'), { recursive: true });
  await chmod(join(base, 'sticky'), 0o1777);
  await mkdir(join(base, 'theirs/cache'), { recursive: true });
  await chown(join(base, 'theirs'), OTHER, OTHER);
  await mkdir(join(base, 'groupw'), { recursive: true });
  await chmod(join(base, 'groupw'), 0o2775);
  await symlink(join(base, 'open/cache'), join(base, 'mine/link'));
  const check = async (path: string) => (await bash(`closed_path ${JSON.stringify(path)} 0 && echo closed || echo "open: $closed_why"`)).stdout;
  t.equal(await check(join(base, 'mine/cache')), 'closed', 'a directory of ours under closed ones');
  t.equal(await check(join(base, 'open/cache')), `open: ${join(base, 'open')} can be changed by others (mode 777)`, 'a world-writable directory above');
  t.equal(await check(join(base, 'sticky/cache')), 'closed', 'a sticky directory above (as /tmp): others cannot rename what is ours');
  t.equal(await check(join(base, 'sticky')), `open: ${join(base, 'sticky')} can be changed by others (mode 1777)`, 'but a sticky directory itself is open');
  t.equal(await check(join(base, 'theirs/cache')), `open: ${join(base, 'theirs')} belongs to another user (uid ${OTHER})`, 'another user\'s directory above');
  t.equal(await check(join(base, 'groupw')), `open: ${join(base, 'groupw')} can be changed by others (mode 2775)`, 'a group-writable (setgid) project directory');
  t.equal(await check(join(base, 'mine/link')), `open: ${join(base, 'open')} can be changed by others (mode 777)`, 'a link is judged by where it leads');
  t.equal(await check(join(base, 'missing')), `open: ${join(base, 'missing')} does not exist`);

  // The site's directories (STRICT): their owner is not known, so a sticky directory above does not
  // do: a neighbour could have created the whole tree under /scratch and own every part of it.
  await mkdir(join(base, 'sticky/theirs-cache'), { recursive: true });
  await chown(join(base, 'sticky/theirs-cache'), OTHER, OTHER);
  const strict = async (path: string) => (await bash(`closed_path ${JSON.stringify(path)} '' strict && echo "closed, owner $closed_owner" || echo "open: $closed_why"`)).stdout;
  t.equal((await bash(`closed_path ${JSON.stringify(join(base, 'sticky/theirs-cache'))} && echo "closed, owner $closed_owner"`)).stdout, `closed, owner ${OTHER}`, 'without STRICT, a tree all of one (unknown) owner under a sticky directory passes');
  t.equal(await strict(join(base, 'sticky/theirs-cache')), `open: ${join(base, 'sticky')} can be changed by others (mode 1777)`, 'with STRICT it does not');
  t.equal(await strict(join(base, 'mine/cache')), 'closed, owner 0');

  // A name with a newline and shell text in it (a neighbour's link under a sticky directory): read as
  // a name, never as owner and mode, never run.
  const hostile = `e\na[$(touch ${join(base, 'PWNED')})] 755 x`;
  await mkdir(join(base, 'sticky', hostile), { recursive: true });
  await chown(join(base, 'sticky', hostile), OTHER, OTHER);
  await symlink(join(base, 'sticky', hostile), join(base, 'mine/odd'));
  const odd = await bash(`closed_path "$P" 0 && echo closed || echo "open: $closed_why"`, { P: join(base, 'mine/odd') });
  t.equal(odd.stdout, `open: ${join(base, 'mine/odd')} belongs to another user (uid ${OTHER})`, odd.output);
  t.notOk(existsSync(join(base, 'PWNED')), 'nothing in the name ran');
});

t.test('private_dir: the app\'s own caches are created 0700 and must be the researcher\'s alone', async (t) => {
  const home = join(dir, 'home-private');
  const made = await bash('private_dir "$(ood_cache_dir)" && private_dir "$(ood_data_dir)" && echo ok', { HOME: home });
  t.equal(made.stdout, 'ok', made.output);
  t.equal((await stat(join(home, '.cache/ood-jupyter'))).mode & 0o777, 0o700);
  t.equal((await stat(join(home, '.local/share/ood-jupyter'))).mode & 0o777, 0o700);

  // A cache another user made (a traversable home whose ~/.cache others could write).
  const planted = join(dir, 'home-planted');
  await mkdir(join(planted, '.cache/ood-jupyter/probes'), { recursive: true });
  await chown(join(planted, '.cache/ood-jupyter'), OTHER, OTHER);
  const refused = await bash(`${fakeRuntime}; image_id=x; probe_python; echo "reached: $py_executable"`, { HOME: planted, PROBE: modernProbe, CALLS: '/dev/null' });
  t.not(refused.exitCode, 0);
  t.same(errorLines(refused.output), [`ood-jupyter: ERROR: ${planted}/.cache/ood-jupyter is not yours alone (${planted}/.cache/ood-jupyter belongs to another user (uid ${OTHER})), so the session will not keep or read its images, packages or settings there. Remove it (or make it yours, mode 0700) and launch again, or ask your support team.`]);
  t.notMatch(refused.stdout, /reached/, 'no probe answer is read from it');

  const open = join(dir, 'home-open');
  await mkdir(join(open, '.local/share/ood-jupyter'), { recursive: true });
  await chmod(join(open, '.local/share/ood-jupyter'), 0o777);
  const pkg = await bash('py_minor=3.12 py_user_site=; prepare_package_dir img; echo reached', { HOME: open });
  t.match(errorLines(pkg.output)[0], /is not yours alone \(.* can be changed by others \(mode 777\)\)/, 'a package directory others can write is refused: it is on every kernel\'s path');
  t.notMatch(pkg.stdout, /reached/);
});

t.test('image caches: a site cache others can write is skipped with one line; its planted image never runs', async (t) => {
  const site = join(dir, 'site-cache-open');
  const digest = `sha256:${hex('d')}`;
  await mkdir(join(site, 'tags'), { recursive: true });
  await chmod(site, 0o1777);
  await writeFile(join(site, `${hex('d')}.sif`), 'PLANTED');
  const home = join(dir, 'home-site-open');
  const calls = join(dir, 'site-open-calls');
  const run = await bash(`${fakeRuntime}; registry_digest() { echo ${digest}; }; image_cache_dir=${site}; image_from_registry docker://localhost:5000/lab/py:latest; echo "image=$image_path"`, { HOME: home, CALLS: calls });
  t.equal(run.exitCode, 0, run.output);
  t.match(run.stdout, new RegExp(`^ood-jupyter: not using the site image cache ${site}: ${site} can be changed by others \\(mode 1777\\)\\. Using your own cache instead; please tell your support team\\.$`, 'm'), 'one line says why');
  t.match(run.stdout, new RegExp(`^image=${home}/\\.cache/ood-jupyter/images/${hex('d')}\\.sif$`, 'm'), 'the image is pulled into the researcher\'s own cache');
  t.equal(await readFile(join(home, `.cache/ood-jupyter/images/${hex('d')}.sif`), 'utf8'), `SIF of docker://localhost:5000/lab/py@${digest}\n`, 'and is the pulled one, not the planted one');
  t.same(await readdir(site), [`${hex('d')}.sif`, 'tags'], 'nothing written into the site cache');

  // A careful site: the cache closed to researchers. A file in it that others can write is not used.
  const closed = join(dir, 'site-cache-closed');
  await mkdir(closed, { recursive: true });
  await writeFile(join(closed, `${hex('e')}.sif`), 'STAFF PULLED');
  await writeFile(join(closed, `${hex('f')}.sif`), 'WRITABLE');
  await chmod(join(closed, `${hex('f')}.sif`), 0o666);
  const use = (d: string) => bash(`${fakeRuntime}; registry_digest() { echo sha256:${d}; }; image_cache_dir=${closed}; image_from_registry docker://localhost:5000/lab/py:latest; echo "image=$image_path"`, { HOME: home, CALLS: calls });
  const good = await use(hex('e'));
  t.match(good.stdout, new RegExp(`^image=${closed}/${hex('e')}\\.sif$`, 'm'), 'a closed site cache serves its image');
  t.notMatch(good.stdout, /not using the site image cache|pulling/);
  const writable = await use(hex('f'));
  t.match(writable.stdout, new RegExp(`^image=${home}/\\.cache/ood-jupyter/images/${hex('f')}\\.sif$`, 'm'), 'a writable file in it is not trusted: pulled into the own cache');
  t.equal(await readFile(join(closed, `${hex('f')}.sif`), 'utf8'), 'WRITABLE', 'and the session never wrote the site cache');
});

t.test('locks: only in the researcher\'s private cache, 0600, so nobody else can pre-create or hold them', async (t) => {
  const home = join(dir, 'home-locks');
  const run = await bash(`${fakeRuntime}; private_dir "$(ood_cache_dir)"; pull_image "$(ood_cache_dir)/images" docker://localhost:5000/lab/py:latest sha256:${hex('a')}; echo ok`, { HOME: home, CALLS: '/dev/null' });
  t.equal(run.exitCode, 0, run.output);
  const locks = join(home, '.cache/ood-jupyter/locks');
  t.equal((await stat(locks)).mode & 0o777, 0o700, 'the lock directory is 0700');
  const [lock] = await readdir(locks);
  t.match(lock, new RegExp(`^[0-9a-f]{16}-${hex('a')}$`));
  t.equal((await stat(join(locks, lock!))).mode & 0o777, 0o600, 'the lock file is 0600');
  t.notOk(existsSync(join(home, '.cache/ood-jupyter/images/.locks')), 'no lock directory beside the images');
});

t.test('digests: from a URI, the registry or a tags/ file, only sha256: and 64 hex digits', async (t) => {
  const home = join(dir, 'home-digest');
  const bad = await bash(`${fakeRuntime}; image_from_registry 'docker://localhost:5000/lab/py@sha256:../../elsewhere/evil'; echo reached`, { HOME: home, CALLS: '/dev/null' });
  t.same(errorLines(bad.output), ['ood-jupyter: ERROR: the image docker://localhost:5000/lab/py@sha256:../../elsewhere/evil names the digest "sha256:../../elsewhere/evil", which is not sha256: followed by 64 hexadecimal digits. Check the image name and launch again.']);
  t.notMatch(bad.stdout, /reached/);

  const registry = await bash(`${fakeRuntime}; registry_digest() { echo 'sha256:../x'; }; image_from_registry docker://localhost:5000/lab/py:latest; echo reached`, { HOME: home, CALLS: '/dev/null' });
  t.match(errorLines(registry.output)[0], /the registry refused the image docker:\/\/localhost:5000\/lab\/py:latest \(no digest in the answer\)/, 'a registry answer that is no digest is refused');

  // Offline, with a tags/ file naming a path instead of a digest, and a file at that path.
  const own = join(home, '.cache/ood-jupyter/images');
  await mkdir(join(own, 'tags'), { recursive: true });
  await mkdir(join(own, '../x'), { recursive: true });
  await writeFile(join(own, '../x/evil.sif'), 'EVIL');
  const key = (await bash("short_hash 'docker://localhost:5000/lab/py:latest'")).stdout;
  await writeFile(join(own, 'tags', key), 'sha256:../x/evil 2026-01-01\n');
  const offline = await bash(`${fakeRuntime}; registry_digest() { return 1; }; image_from_registry docker://localhost:5000/lab/py:latest; echo "reached $image_path"`, { HOME: home, CALLS: '/dev/null' });
  t.match(errorLines(offline.output)[0], /^ood-jupyter: ERROR: cannot reach the registry localhost:5000 /, 'the doctored tags/ file is ignored: no cached copy');
  t.notMatch(offline.stdout, /reached/);
  // A good tags/ file still serves the last copy offline.
  await writeFile(join(own, `${hex('c')}.sif`), 'LAST');
  await writeFile(join(own, 'tags', key), `sha256:${hex('c')} 2026-01-01\n`);
  const last = await bash(`${fakeRuntime}; registry_digest() { return 1; }; image_from_registry docker://localhost:5000/lab/py:latest; echo "image=$image_path"`, { HOME: home, CALLS: '/dev/null' });
  t.match(last.stdout, new RegExp(`^image=${own}/${hex('c')}\\.sif$`, 'm'));
});

t.test('registry_digest: a 401 whose realm is not https:// is refused; curl reads no option and no file from it (real curl, a real TLS server)', async (t) => {
  const certs = join(dir, 'tls');
  await mkdir(certs);
  await execa('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', join(certs, 'key.pem'), '-out', join(certs, 'cert.pem')]);
  const requests: Array<{ method?: string; url?: string; headers: IncomingHttpHeaders }> = [];
  let realm = '';
  const server = createServer({ key: await readFile(join(certs, 'key.pem')), cert: await readFile(join(certs, 'cert.pem')) }, (req, res) => {
    requests.push({ method: req.method, url: req.url, headers: req.headers });
    if (req.url?.startsWith('/v2/')) {
      res.writeHead(401, { 'WWW-Authenticate': `Bearer realm="${realm}",service="test",scope="repository:lab/py:pull"` });
    } else {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.write('{"token": "from-the-server"}');
    }
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  const port = (server.address() as { port: number }).port;
  // What a hostile realm would make curl read: a config that fetches a URL of the server's into a file,
  // and a local file whose "token" would then be sent to the registry.
  const config = join(dir, 'curl-config');
  const written = join(dir, 'curl-wrote-this');
  await writeFile(config, `url = "https://localhost:${port}/read-the-config"\noutput = "${written}"\n`);
  const secret = join(dir, 'secret.json');
  await writeFile(secret, '{"token": "SECRET-OF-THE-RESEARCHER"}');
  const ask = () => bash(`registry_digest docker://localhost:${port}/lab/py:latest; echo "rc=$?"`, { CURL_CA_BUNDLE: join(certs, 'cert.pem'), HOME: join(dir, 'home-realm') });

  for (const hostile of [`-K${config}`, `file://${secret}`, `http://localhost:${port}/token`, `https://localhost:${port}/token x`]) {
    realm = hostile;
    requests.length = 0;
    const run = await ask();
    t.equal(run.stdout, 'its sign-in service is not an https:// address\nrc=2', `realm ${hostile}: refused with its reason`);
    t.same(requests.map((r) => r.url), ['/v2/lab/py/manifests/latest'], 'only the manifest request reached the server');
    t.notOk(existsSync(written), 'curl wrote no file');
    t.notOk(requests.some((r) => String(r.headers.authorization ?? '').includes('SECRET')), 'the local file\'s token was sent nowhere');
  }
  // An https:// realm is asked, with the --, and its token used for the manifest.
  realm = `https://localhost:${port}/token`;
  requests.length = 0;
  const good = await ask();
  t.equal(good.stdout, 'HTTP 401\nrc=2', 'a real token service is asked (this one never grants access)');
  t.same(requests.map((r) => r.url?.split('?')[0]), ['/v2/lab/py/manifests/latest', '/token', '/v2/lab/py/manifests/latest']);
  t.equal(requests[2]!.headers.authorization, 'Bearer from-the-server', 'the token went to the registry as a header');
});

t.test('python3 without the current directory on sys.path: JupyterLab\'s start and the probe (real python3)', async (t) => {
  const shared = join(dir, 'shared-project');
  const canary = join(dir, 'CANARY');
  await mkdir(join(shared, 'jupyterlab'), { recursive: true });
  await mkdir(join(shared, 'jupyter_server'), { recursive: true });
  const plant = `open(${JSON.stringify(canary)}, "a").write(__name__ + "\\n")\nprint("executable=/planted")\n`;
  for (const file of ['jupyterlab/__init__.py', 'jupyter_server/__init__.py', 'json.py', 'sysconfig.py', 'runpy.py', 'subprocess.py', 'pip.py']) {
    await writeFile(join(shared, file), plant);
  }
  const inShared = (script: string) => execa('bash', ['--norc', '--noprofile', '-c', `source ${dir}/messages.sh; source ${dir}/jupyter-session.sh; ${script}`], { cwd: shared, reject: false });
  const main = await inShared('python3 -s -c "$python_module_main" json.tool <<<\'{"a": 1}\'');
  t.equal(main.stdout, '{\n    "a": 1\n}', `python_module_main runs the real module: ${main.stderr}`);
  const lab = await inShared('python3 -s -c "$python_module_main" jupyterlab --version');
  t.notMatch(lab.stdout, /planted/, 'the planted jupyterlab/ is not the one run');
  const probe = await inShared(`python3 -c "$(cat ${dir}/inspect-python.py)" probe`);
  t.match(probe.stdout, /^executable=\/\S+python3[.\d]*$/m, `the probe names the real Python: ${probe.stdout}`);
  t.notMatch(probe.stdout, /planted/);
  t.notOk(existsSync(canary), `nothing planted ran${existsSync(canary) ? `: ${await readFile(canary, 'utf8')}` : ''}`);
  // What the protection is against: plain `python3 -m` and `-c` import the planted modules.
  await inShared('python3 -m json.tool </dev/null');
  t.ok(existsSync(canary), 'without it, python3 -m json.tool runs the planted json.py');
});

t.test('site overlay and environments: used only where no one else can change them', async (t) => {
  const overlays = join(dir, 'overlays-open');
  await mkdir(join(overlays, 'python3.13/site-packages'), { recursive: true });
  await chmod(join(overlays, 'python3.13'), 0o777);
  const fake = fakeRuntime.replace('printf "%s\\n" "$PROBE"', 'if [[ -n ${PYTHONPATH:-} ]]; then printf "%s\\n" "$LAB"; else printf "%s\\n" "$PROBE"; fi');
  const run = await bash(`${fake}; image_id=o image_path=/img.sif overlays_dir=${overlays} user_install=0; choose_jupyter img; echo reached`,
    { PROBE: 'executable=/usr/bin/python3\npython=3.13.1\npip=25', LAB: modernProbe, CALLS: '/dev/null', HOME: join(dir, 'home-overlay-open') });
  t.match(run.stdout, new RegExp(`^ood-jupyter: not using the site's JupyterLab at ${overlays}/python3\\.13: ${overlays}/python3\\.13 can be changed by others \\(mode 777\\)\\. Please tell your support team\\.$`, 'm'));
  t.equal(errorLines(run.output).length, 1, 'then the one line of an image without JupyterLab');
  t.notMatch(run.stdout, /reached|^ood-jupyter: the image lacks/m);

  // An overlay closed above, but with a package directory inside that others can write.
  const inner = join(dir, 'overlays-inner');
  await mkdir(join(inner, 'python3.13/site-packages/jupyterlab'), { recursive: true });
  await chmod(join(inner, 'python3.13/site-packages/jupyterlab'), 0o777);
  const innerRun = await bash(`${fake}; image_id=p image_path=/img.sif overlays_dir=${inner} user_install=0; choose_jupyter img; echo reached`,
    { PROBE: 'executable=/usr/bin/python3\npython=3.13.1\npip=25', LAB: modernProbe, CALLS: '/dev/null', HOME: join(dir, 'home-overlay-inner') });
  t.match(innerRun.stdout, new RegExp(`^ood-jupyter: not using the site's JupyterLab at ${inner}/python3\\.13: ${inner}/python3\\.13/site-packages/jupyterlab can be changed by others \\(mode 777\\)\\.`, 'm'), 'an open package directory inside the overlay');

  // A link inside that leads nowhere on this machine (into the image, as Debian's packages do) is no opening.
  const linked = join(dir, 'overlays-linked');
  await mkdir(join(linked, 'python3.13/site-packages/tinycss2'), { recursive: true });
  await symlink('../../../../share/python-tinycss2-common/tests', join(linked, 'python3.13/site-packages/tinycss2/tests'));
  const linkedRun = await bash(`${fake}; image_id=q image_path=/img.sif overlays_dir=${linked} user_install=0; choose_jupyter img && echo "overlay=$jupyter_overlay"`,
    { PROBE: 'executable=/usr/bin/python3\npython=3.13.1\npip=25', LAB: modernProbe, CALLS: '/dev/null', HOME: join(dir, 'home-overlay-linked') });
  t.match(linkedRun.stdout, new RegExp(`^overlay=${linked}/python3\\.13$`, 'm'), `a closed overlay with a dangling link is used: ${linkedRun.output}`);

  const home = join(dir, 'home-envs');
  await mkdir(join(home, 'venvs/mine/bin'), { recursive: true });
  await writeFile(join(home, 'venvs/mine/bin/python3'), '');
  const lab = join(dir, 'lab-envs');
  await mkdir(join(lab, 'shared/bin'), { recursive: true });
  await writeFile(join(lab, 'shared/bin/python3'), '');
  await chmod(lab, 0o2775);
  // A closed environment whose site-packages others can write: a .pth file there runs even under python -I.
  const site = join(dir, 'site-envs');
  await mkdir(join(site, 'pth/bin'), { recursive: true });
  await writeFile(join(site, 'pth/bin/python3'), '');
  await mkdir(join(site, 'pth/lib/python3.13/site-packages'), { recursive: true });
  await chmod(join(site, 'pth/lib/python3.13/site-packages'), 0o777);
  const envs = await bash(`${fakeRuntime.replace('printf "%s\\n" "$PROBE"', 'shift 3; echo "asked: $*" >>"$CALLS"')}; image_id=e env_search_dirs=(${lab} ${site}); discover_environments`, { CALLS: join(dir, 'env-calls'), HOME: home });
  t.same(envs.stdout.split('\n'), [
    `skip\t${lab}/shared\tenvironment\t${lab} can be changed by others (mode 2775)`,
    `skip\t${site}/pth\tenvironment\t${site}/pth/lib/python3.13/site-packages can be changed by others (mode 777)`,
  ], 'an environment in a group-writable directory, and one whose site-packages others can write, are not run');
  t.ok((await readFile(join(dir, 'env-calls'), 'utf8')).endsWith(`environments ${home}/venvs/mine\n`), 'the researcher\'s own environment is asked about, alone');
});

t.test('json_string escapes every control character: kernel.json and card.json stay valid', async (t) => {
  const name = 'env\u0001with\u001b[31mcontrol\u007f';
  const run = await bash(`write_kernel "$PWD/k" '["python3"]' "$NAME" '{}'; kernel_names=("$NAME"); image_ref=$NAME; image_path=/x package_dir=/p jupyter_overlay=; write_session_facts "$PWD/card.json"`, { NAME: name });
  t.equal(run.exitCode, 0, run.output);
  t.equal(JSON.parse(await readFile(join(run.session, 'k/kernel.json'), 'utf8')).display_name, name, 'kernel.json parses, the name intact');
  const card = JSON.parse(await readFile(join(run.session, 'card.json'), 'utf8'));
  t.same([card.image, card.kernels], [name, [name]], 'card.json parses, the name intact');
});

t.test('kernels start without the notebook\'s directory on sys.path (real python3): a planted ipykernel_launcher.py is not the kernel', async (t) => {
  const shared = join(dir, 'kernel-dir');
  await mkdir(shared);
  await writeFile(join(shared, 'ipykernel_launcher.py'), 'print("PLANTED KERNEL")\n');
  const argv = JSON.parse((await bash('kernel_argv /usr/bin/python3')).stdout) as string[];
  t.same(argv, ['/usr/bin/python3', '-c', SAFE_MAIN, 'ipykernel_launcher', '-f', '{connection_file}'], 'the kernelspec argv');
  // Here python3 has no ipykernel: the real module is not found, and the planted one never runs.
  const run = await execa(argv[0]!, argv.slice(1, 4), { cwd: shared, reject: false });
  t.notMatch(run.stdout, /PLANTED/, 'the planted launcher did not run');
  t.match(run.stderr, /No module named ipykernel_launcher|ipykernel/, run.stderr);
  const plain = await execa('python3', ['-m', 'ipykernel_launcher'], { cwd: shared, reject: false });
  t.match(plain.stdout, /PLANTED KERNEL/, 'what the kernelspec had before: -m runs the planted file as the kernel');
});

t.test('record_jupyter_exit reads only slurmstepd\'s and JupyterLab\'s own lines, not a request that quotes them', async (t) => {
  const squeue = 'squeue() { echo "$(date -d @$(( $(date +%s) - 600 )) +%Y-%m-%dT%H:%M:%S) 1:00:00"; };';
  const fake = '[W 2026-12-06 12:00:00.000 ServerApp] 404 GET /node/h/1/x (@10.0.0.9) 1.00ms referer=http://x/*** JOB 7 ON vm CANCELLED AT 2026-12-06T12:00:00 DUE TO TIME LIMIT ***';
  const cancel = await bash(`${squeue} session_end_record=$PWD/ended; printf '%s\\n' "$FAKE" '[2026-12-06T12:00:01.000] error: *** JOB 7 ON vm CANCELLED AT 2026-12-06T12:00:01 ***' >output.log
    record_jupyter_exit 143 1 output.log; head -n 1 ended`, { SLURM_JOB_ID: '7', FAKE: fake });
  t.equal(cancel.stdout, 'cancelled', 'a cancel stays a cancel (Slurm 26 writes its line with a time stamp)');
  const idle = await bash(`session_end_record=$PWD/ended; printf '%s\\n' "$FAKE" >output.log; record_jupyter_exit 0 0 output.log; head -n 1 ended`,
    { FAKE: '[W 2026-12-06 12:00:00.000 ServerApp] 404 GET /x (@10.0.0.9) 1.00ms referer=http://x/ No kernels for 60 seconds; shutting down.' });
  t.equal(idle.stdout, 'stopped', 'a shutdown from the File menu is not taken for the idle limit');
});
