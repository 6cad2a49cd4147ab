// A real container registry for the end-to-end suite: Debian's docker-registry (the Distribution
// registry) on this machine's loopback with TLS, its certificate signed by a CA made here and trusted
// by the test node (installed with update-ca-certificates). Images are made with Debian's umoci from
// a root filesystem and pushed with skopeo, as a site's CI would push them.
import { execa, type ResultPromise } from 'execa';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { inNode, type TestNode } from './node.js';

export const registryAvailable = () => ['/usr/bin/docker-registry', '/usr/bin/umoci', '/usr/bin/skopeo', '/usr/bin/openssl'].every(existsSync);

export interface Registry {
  /** host:port, as it appears in docker:// URIs. */
  address: string;
  /** Push the root filesystem ROOTFS (a directory on this machine) as REPO:TAG; returns the manifest digest. */
  push(rootfs: string, repoTag: string): Promise<string>;
  /** The registry's access log so far. */
  log(): Promise<string>;
  /** Its TLS key and certificate (CN localhost, signed by the CA the node trusts), for other test servers on this machine. */
  tls: { key: string; cert: string };
  stop(): Promise<void>;
}

const CA_NAME = 'ood-jupyter-test-registry.crt';

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

const listening = (port: number) => new Promise<boolean>((resolve) => {
  const socket = connect(port, '127.0.0.1');
  socket.once('connect', () => { socket.destroy(); resolve(true); });
  socket.once('error', () => resolve(false));
});

export async function startRegistry(node: TestNode): Promise<Registry> {
  const dir = await mkdtemp(join(tmpdir(), 'ood-jupyter-registry-'));
  const port = await freePort();
  const address = `localhost:${port}`;
  const openssl = (args: string[]) => execa('openssl', args, { cwd: dir });
  await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=ood-jupyter test CA', '-keyout', 'ca.key', '-out', 'ca.crt']);
  await openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', 'server.key', '-out', 'server.csr']);
  await writeFile(join(dir, 'san.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  await openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', 'san.ext', '-out', 'server.crt']);
  // skopeo reads the CAs of a registry from a directory of *.crt files.
  await mkdir(join(dir, 'certs.d'));
  await cp(join(dir, 'ca.crt'), join(dir, 'certs.d', 'ca.crt'));
  await writeFile(join(dir, 'config.yml'), [
    'version: 0.1',
    'log:', '  level: info', '  accesslog:', '    disabled: false',
    'storage:', `  filesystem:`, `    rootdirectory: ${dir}/data`, '  delete:', '    enabled: true',
    'http:', `  addr: 127.0.0.1:${port}`, '  tls:', `    certificate: ${dir}/server.crt`, `    key: ${dir}/server.key`,
    '',
  ].join('\n'));

  // The node trusts the CA, as a site's compute nodes trust its registry's.
  await cp(join(dir, 'ca.crt'), node.hostPath(`/usr/local/share/ca-certificates/${CA_NAME}`));
  const trust = await inNode(['update-ca-certificates'], { root: true });
  if (trust.exitCode !== 0) throw new Error(`update-ca-certificates in the node: ${trust.stderr}`);

  const logFile = join(dir, 'registry.log');
  const server: ResultPromise = execa('docker-registry', ['serve', join(dir, 'config.yml')], { reject: false, all: true, buffer: false });
  const chunks: string[] = [];
  server.all?.on('data', (data: Buffer) => chunks.push(data.toString()));
  for (let i = 0; i < 100 && !(await listening(port)); i++) await new Promise((r) => setTimeout(r, 100));
  if (!(await listening(port))) throw new Error(`docker-registry did not start:\n${chunks.join('')}`);

  return {
    address,
    tls: { key: join(dir, 'server.key'), cert: join(dir, 'server.crt') },
    async push(rootfs: string, repoTag: string) {
      const work = await mkdtemp(join(dir, 'image-'));
      const layout = join(work, 'oci');
      const bundle = join(work, 'bundle');
      await execa('umoci', ['init', '--layout', layout]);
      await execa('umoci', ['new', '--image', `${layout}:image`]);
      await execa('umoci', ['unpack', '--image', `${layout}:image`, bundle]);
      await execa('cp', ['-a', `${rootfs}/.`, join(bundle, 'rootfs')]);
      await execa('umoci', ['repack', '--image', `${layout}:image`, bundle]);
      await execa('umoci', ['config', '--image', `${layout}:image`, '--config.env', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
      const digestFile = join(work, 'digest');
      await execa('skopeo', ['copy', '--quiet', '--dest-cert-dir', join(dir, 'certs.d'), '--digestfile', digestFile,
        `oci:${layout}:image`, `docker://${address}/${repoTag}`]);
      const digest = (await readFile(digestFile, 'utf8')).trim();
      await rm(work, { recursive: true, force: true });
      return digest;
    },
    async log() {
      await writeFile(logFile, chunks.join(''));
      return chunks.join('');
    },
    async stop() {
      server.kill('SIGTERM');
      await server;
      await rm(node.hostPath(`/usr/local/share/ca-certificates/${CA_NAME}`), { force: true });
      await inNode(['update-ca-certificates', '--fresh'], { root: true });
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The root filesystem of a SIF in the node, unpacked to a directory on this machine. */
export async function unpackImage(node: TestNode, sif: string, into: string): Promise<void> {
  // As the researcher: root's apptainer lacks a capability in this sandbox. The files become root's
  // again here, as they are in the image.
  const nodeDir = `${node.status.home}/.unpacked-${Date.now()}`;
  const built = await inNode(['apptainer', '--quiet', 'build', '--sandbox', nodeDir, sif], { timeout: 300_000 });
  if (built.exitCode !== 0) throw new Error(`unpacking ${sif}: ${built.stderr}`);
  await execa('cp', ['-a', `${node.hostPath(nodeDir)}/.`, into]);
  await execa('chown', ['-R', 'root:root', into]);
  await rm(node.hostPath(nodeDir), { recursive: true, force: true });
}
