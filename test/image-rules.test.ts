// What a registry image URI is (src/rules.ts), checked everywhere it is enforced: the container presets'
// schema (zod, and the JSON Schema made from it), the generated form.js (run in node against a stub page)
// and the generated submit.yml.erb (rendered by real Ruby as the dashboard renders it: the check that
// really protects). A table of URIs each must accept or refuse, all alike. And the digest rule: the job's
// bash library (valid_digest in template/jupyter-session.sh) keeps its own copy, which must be the same.
import t from 'tap';
import { execa } from 'execa';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import vm from 'node:vm';
import { containerSchema } from '../src/presets/schema.js';
import { jsonSchema } from '../src/presets/json-schema.js';
import { digestPattern, digestSource, isRegistryImage, registryImageJs, registryImageRuby, registryImageSource } from '../src/rules.js';
import { fill, submitMessages } from '../src/messages.js';
import { renderLaunches } from './support/ood.js';
import { builtApp } from './support/app.js';
import { repoRoot } from './support/presets.js';

const hex = '0123456789abcdef'.repeat(4);

const accepted: string[] = [
  'docker://ubuntu',
  'docker://ubuntu:22.04',
  'docker://localhost:5000/lab/python3:latest',
  `docker://ghcr.io/org/img:1.2@sha256:${hex}`,
  'oras://registry.example.org/x/y:1',
  'docker://nvcr.io/nvidia/pytorch:24.01-py3',
  `docker://ghcr.io/org/img@sha256:${hex}`,
  'docker://jupyter/scipy-notebook',
  'docker://quay.io/jupyter/scipy-notebook:2024-05-27',
  'docker://registry-1.docker.io:443/library/python:3.12-slim',
  'docker://my_org/my_image:_tag',
  `docker://h/r:${'t'.repeat(128)}`,
];

const refused: Array<[string, string]> = [
  ['a digest that is a path', 'docker://h/r@sha256:../../x'],
  ['the report\'s path digest', 'docker://host/repo@sha256:../../elsewhere/evil'],
  ['an upper-case digest', `docker://h/r@sha256:${hex.toUpperCase()}`],
  ['63 hex digits', `docker://h/r@sha256:${hex.slice(1)}`],
  ['65 hex digits', `docker://h/r@sha256:${hex}0`],
  ['a digest of another algorithm', `docker://h/r@sha512:${hex}`],
  ['an empty digest', 'docker://h/r@sha256:'],
  ['two digests', `docker://h/r@sha256:${hex}@sha256:${hex}`],
  ['a tag after the digest', `docker://h/r@sha256:${hex}:latest`],
  ['a ".." component', 'docker://h/../x'],
  ['a "." component', 'docker://h/./x'],
  ['a hidden component', 'docker://h/.x'],
  ['an empty component', 'docker://h//x'],
  ['a trailing "/"', 'docker://h/r/'],
  ['"@" with a tag', 'docker://h/r@latest'],
  ['a user before the host', 'docker://user@h/r'],
  ['a host starting with "-"', 'docker://-h/r'],
  ['no repository', 'docker://'],
  ['http', 'http://h/r'],
  ['an upper-case scheme', 'DOCKER://h/r'],
  ['two tags', 'docker://h/r:a:b'],
  ['a tag then a path', 'docker://ubuntu:22.04/x'],
  ['a tag starting with "-"', 'docker://h/r:-x'],
  ['a tag of 129 characters', `docker://h/r:${'t'.repeat(129)}`],
  ['a space inside', 'docker://h/r x'],
  ['a line break inside', 'docker://h/r\n/evil'],
  ['a line break before the rest', 'docker://ubuntu\ndocker://h/r@sha256:../../x'],
  ['a command substitution', 'docker://h/$(id)'],
  ['backticks', 'docker://h/`id`'],
  ['a semicolon', 'docker://h/r;id'],
  ['a quote', 'docker://h/r\'x'],
  ['a fragment', 'docker://h/r#x'],
  ['a query', 'docker://h/r?x=1'],
  ['a backslash', 'docker://h\\r'],
  ['a non-ASCII letter', 'docker://h/ré'],
  ['a NUL', 'docker://h/r\u0000x'],
  ['a long run that must fail fast', `docker://${'a.'.repeat(20000)}!`],
];

const cases = [...accepted.map((uri) => ({ name: JSON.stringify(uri).slice(0, 80), uri, ok: true })),
  ...refused.map(([what, uri]) => ({ name: `${what} (${JSON.stringify(uri).slice(0, 60)})`, uri, ok: false }))];

t.test('one definition: the digest rule and the image rule', async (t) => {
  t.equal(digestPattern.source, '^sha256:[0-9a-f]{64}$', 'the digest rule');
  t.ok(registryImageSource.includes(`@${digestSource}`), 'the image rule takes its digest from the digest rule');
  t.equal(registryImageJs, `^(?:${registryImageSource})$`, 'form.js: anchored with ^…$');
  t.equal(registryImageRuby, `\\A(?:${registryImageSource})\\z`, 'submit.yml.erb: anchored with \\A…\\z');
  // Only syntax JavaScript and Ruby read alike: no shorthand classes, no lookaround, no anchors inside.
  t.notMatch(registryImageSource, /\\[dwsDWSbBAzZ]|\(\?[=!<]|[\^$]/, 'no \\d, \\w, \\s, lookaround or anchors');
  t.doesNotThrow(() => new RegExp(registryImageJs, 'u'), 'a JSON Schema validator\'s unicode mode reads it too');
});

t.test('the job\'s bash library has the same digest rule (valid_digest in template/jupyter-session.sh)', async (t) => {
  const library = await readFile(join(repoRoot, 'app-template/template/jupyter-session.sh'), 'utf8');
  const body = /^valid_digest\(\) \{\n([^]*?)\n\}/m.exec(library);
  if (!body) {
    t.fail('app-template/template/jupyter-session.sh has no function valid_digest() { … }: the job must check a digest with '
      + `the regex ${digestPattern.source} (src/rules.ts digestPattern) before a file name is made from it`);
    return;
  }
  const literal = /\[\[ \$1 =~ (\S+) \]\]/.exec(body[1]!);
  if (!literal) {
    t.fail(`valid_digest has no [[ $1 =~ REGEX ]] test to compare with src/rules.ts (its body: ${JSON.stringify(body[1])})`);
    return;
  }
  t.equal(literal[1], digestPattern.source, 'valid_digest\'s regex is src/rules.ts\'s digestPattern');
  // And bash reads it as JavaScript does.
  const samples = [`sha256:${hex}`, `sha256:${hex.toUpperCase()}`, `sha256:${hex.slice(1)}`, `sha256:${hex}0`, 'sha256:../../x',
    `sha512:${hex}`, `xsha256:${hex}`, `sha256:${hex}\n`, ''];
  const program = `${body[0]}\nfor d in "$@"; do if valid_digest "$d"; then printf 1; else printf 0; fi; done`;
  const run = await execa('bash', ['--norc', '--noprofile', '-c', program, 'bash', ...samples], { reject: false });
  t.equal(run.stdout, samples.map((s) => (digestPattern.test(s) ? '1' : '0')).join(''), 'bash and JavaScript agree on each sample');
});

t.test(`${cases.length} image URIs: the schema, form.js and submit.yml.erb all accept or all refuse each`, async (t) => {
  // The bundled presets, with oras:// allowed beside docker://.
  const app = await builtApp([{ file: 'site.yml', from: '  registries:\n    - docker\n', to: '  registries:\n    - docker\n    - oras\n' }]);
  t.teardown(app.cleanup);
  const formJs = await readFile(join(app.appDir, 'form.js'), 'utf8');
  const submit = await readFile(join(app.appDir, 'submit.yml.erb'), 'utf8');
  t.ok(formJs.includes(JSON.stringify(registryImageJs)), 'form.js carries the rule as data');
  t.ok(submit.includes(JSON.stringify(registryImageRuby)), 'submit.yml.erb carries the rule as data');
  t.notOk(/@-\]/.test(formJs) || /@-\]/.test(submit), 'no loose character class with "@" is left in either');

  // form.js on a stub page: only what problemWith() reads. It waits for DOMContentLoaded, which never comes.
  const prefix = 'batch_connect_session_context_';
  const inputs: Record<string, { value: string }> = {
    [`${prefix}slurm_partition`]: { value: 'gpu' },
    [`${prefix}container`]: { value: 'custom' },
    [`${prefix}custom_image`]: { value: '' },
  };
  const page = vm.createContext({
    document: { readyState: 'loading', addEventListener: () => {}, getElementById: (id: string) => inputs[id] ?? null },
    window: { location: { search: '' } },
  });
  vm.runInContext(formJs, page, { filename: 'form.js' });
  const formProblem = (uri: string): string | null => {
    inputs[`${prefix}custom_image`]!.value = uri;
    return vm.runInContext('problemWith("custom_image")', page) as string | null;
  };

  const where = 'a .sif file under /project/containers/, or a .sif file under /scratch/, or a docker:// URI, or a oras:// URI';
  const values = (uri: string) => ({
    cluster: 'example', slurm_partition: 'gpu', container: 'custom', custom_image: uri, num_gpus: '1', num_cores: '2',
    memory_gb: '8', bc_num_hours: '1', working_dir: '', extra_binds: '', auto_accounts: 'lab',
  });
  const results = await renderLaunches(app.appDir, cases.map((c) => ({ values: values(c.uri) })), { scheduler: { accounts: ['lab'] } });
  const imageSchema = containerSchema.shape.image;
  const jsonPattern = (jsonSchema('container') as { properties: { image: { pattern: string } } }).properties.image.pattern;
  const jsonSchemaImage = new RegExp(jsonPattern, 'u');

  for (const [i, c] of cases.entries()) {
    const started = performance.now();
    const schema = imageSchema.safeParse(c.uri).success;
    t.ok(performance.now() - started < 100, `${c.name}: the schema answers at once`);
    t.equal(schema, c.ok, `${c.name}: the container schema ${c.ok ? 'accepts' : 'refuses'} it`);
    t.equal(jsonSchemaImage.test(c.uri), c.ok, `${c.name}: the JSON Schema's pattern ${c.ok ? 'accepts' : 'refuses'} it`);
    t.equal(isRegistryImage(c.uri), c.ok, `${c.name}: isRegistryImage`);

    const shown = c.uri.length > 80 ? `${c.uri.slice(0, 80)}…` : c.uri;
    const sentence = fill(submitMessages.customImageOutside, { where, value: shown });
    t.equal(formProblem(c.uri), c.ok ? null : sentence, `${c.name}: form.js ${c.ok ? 'accepts' : 'refuses'} it`);

    const r = results[i]!;
    if (c.ok) {
      t.equal(r.ok, true, `${c.name}: submit.yml.erb accepts it (${r.error ?? ''})`);
    } else {
      t.equal(r.ok, false, `${c.name}: submit.yml.erb refuses it`);
      t.equal(r.failedAt, 'submit', `${c.name}: refused by submit.yml.erb`);
      t.equal(r.error, sentence, `${c.name}: with the same sentence as form.js`);
    }
  }
});

t.test('an image URI a researcher may not use stays refused: oras:// where only docker:// is allowed', async (t) => {
  const app = await builtApp();
  t.teardown(app.cleanup);
  const [r] = await renderLaunches(app.appDir, [{ values: {
    cluster: 'example', slurm_partition: 'gpu', container: 'custom', custom_image: 'oras://registry.example.org/x/y:1', num_gpus: '1',
    num_cores: '2', memory_gb: '8', bc_num_hours: '1', working_dir: '', extra_binds: '', auto_accounts: 'lab',
  } }], { scheduler: { accounts: ['lab'] } });
  t.equal(r!.ok, false);
  t.match(r!.error, /^Your own container image must be /);
});
