// The app's form page as Open OnDemand's dashboard serves it, for the browser tests of form.js: form.yml
// turned into the HTML the dashboard's bootstrap_form helpers produce (read from OOD's
// apps/dashboard/app/views/batch_connect/session_contexts/_form.html.erb and
// helpers/batch_connect/session_contexts_helper.rb; written here, not copied):
//  - each attribute in a <div id="batch_connect_session_context_<id>_wrapper"> holding Bootstrap's
//    <div class="mb-3"> with its label, the widget (id batch_connect_session_context_<id>, name
//    batch_connect_session_context[<id>]) and the help in <small class="form-text">;
//  - select options with their data-* attributes as form.yml gives them (values as strings);
//  - the dashboard's <div hidden id="ood_config" data-bc-dynamic-js="…">, and the app's form.js inside a
//    function of its own, after the form, as the dashboard includes it.
// Left out: OOD's own dynamic_forms.js (form.js must work without it; with the flag on, the test checks
// that form.js leaves the form alone), the path selector's modal, Bootstrap's CSS.
import { createServer, type Server } from 'node:http';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { load } from 'js-yaml';

type Option = [string, string, Record<string, unknown>?];
interface Attribute { widget?: string; label?: string; help?: string; value?: unknown; min?: number; max?: number; step?: number; options?: Option[] }
interface FormYml { form: string[]; attributes: Record<string, Attribute> }

const escape = (text: unknown) => String(text).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export interface FormPageOptions {
  /** The site's bc_dynamic_js: true, false, or null for a dashboard older than 3.1 (no #ood_config). */
  dynamicJs: boolean | null;
  /** Values the dashboard remembered from the last launch (it renders them as the fields' values). */
  remembered?: Record<string, string>;
}

export async function formPage(appDir: string, options: FormPageOptions): Promise<string> {
  const form = load(await readFile(join(appDir, 'form.yml'), 'utf8')) as FormYml;
  const script = await readFile(join(appDir, 'form.js'), 'utf8');
  const widgets = form.form.map((id) => {
    const a = form.attributes[id] ?? {};
    if (id === 'auto_accounts') return ''; // the scheduler's accounts: not part of these tests
    const name = `batch_connect_session_context[${id}]`;
    const htmlId = `batch_connect_session_context_${id}`;
    const value = options.remembered?.[id] ?? a.value ?? '';
    let widget: string;
    if (a.widget === 'select') {
      const chosen = options.remembered?.[id] ?? a.value ?? a.options?.[0]?.[1];
      widget = `<select class="form-select" name="${name}" id="${htmlId}">${(a.options ?? []).map(([label, v, data]) =>
        `<option ${Object.entries(data ?? {}).map(([k, d]) => `${k}="${escape(d)}"`).join(' ')} value="${escape(v)}"${v === chosen ? ' selected' : ''}>${escape(label)}</option>`).join('')}</select>`;
    } else if (a.widget === 'number_field') {
      widget = `<input class="form-control" type="number" min="${a.min}" max="${a.max}" step="${a.step ?? 1}" value="${escape(value)}" name="${name}" id="${htmlId}">`;
    } else {
      widget = `<input class="form-control" type="text" value="${escape(value)}" name="${name}" id="${htmlId}">`;
    }
    return `<div id="${htmlId}_wrapper" data-widget-type="${a.widget ?? 'text_field'}" data-hide-by-default="false"><div class="mb-3">`
      + `<label class="form-label" for="${htmlId}">${escape(a.label ?? id)}</label>${widget}`
      + `<small class="form-text text-muted">${escape(a.help ?? '')}</small></div></div>`;
  }).join('\n');
  const config = options.dynamicJs === null ? '' : `<div hidden id="ood_config" data-bc-dynamic-js="${options.dynamicJs}"></div>`;
  return `<!doctype html><html><head><meta charset="utf-8"><title>JupyterLab</title>
<style>body{font-family:sans-serif;max-width:46rem;margin:1rem auto}.mb-3{margin-bottom:.8rem}label{display:block;font-weight:bold}
.form-text{display:block;color:#666;font-size:.8rem}.invalid-feedback{color:#b00020}.is-invalid{border:2px solid #b00020}
.alert{padding:.6rem;margin:.6rem 0;border:1px solid}.alert-warning{background:#fff3cd}.alert-info{background:#e7f3fe}.alert-danger{background:#f8d7da}
[hidden]{display:none!important}input,select{width:100%;padding:.3rem}</style></head><body>
${config}
<h2>JupyterLab</h2>
<form id="new_batch_connect_session_context" action="/launch" method="post" autocomplete="off">
${widgets}
<div class="d-grid gap-2"><input type="submit" name="commit" value="Launch" class="btn btn-primary"></div>
</form>
<script>(function(){
${script}
}());</script>
</body></html>`;
}

export interface FormServer { url: string; launches: string[]; setPage(html: string): void; close(): Promise<void> }

/** Serves the page at /new (any query) and records each POST /launch: what the dashboard would submit. */
export async function serveForm(): Promise<FormServer> {
  let page = '';
  const launches: string[] = [];
  const server: Server = createServer((request, response) => {
    if (request.method === 'POST' && request.url === '/launch') {
      let body = '';
      request.on('data', (chunk: Buffer) => { body += chunk.toString(); });
      request.on('end', () => { launches.push(body); response.end('<html><body>launched</body></html>'); });
      return;
    }
    response.setHeader('Content-Type', 'text/html; charset=utf-8');
    response.end(page);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/new`,
    launches,
    setPage(html: string) { page = html; },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
