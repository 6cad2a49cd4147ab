// The app's form page as Open OnDemand's dashboard serves it, for the browser tests of form.js: form.yml
// turned into the HTML the dashboard's bootstrap_form helpers produce (read from OOD's
// apps/dashboard/app/views/batch_connect/session_contexts/_form.html.erb and
// helpers/batch_connect/session_contexts_helper.rb; written here, not copied):
//  - each attribute in a <div id="batch_connect_session_context_<id>_wrapper"> (OOD 4.1 and later)
//    holding Bootstrap's <div class="mb-3"> (4.x; 3.1's Bootstrap 4: <div class="form-group">) with its
//    label, the widget (id batch_connect_session_context_<id>, name batch_connect_session_context[<id>])
//    and the help in <small class="form-text">;
//  - select options with their data-* attributes as form.yml gives them (values as strings);
//  - the dashboard's <div hidden id="ood_config" data-bc-dynamic-js="…">, and the app's form.js inside a
//    function of its own, after the form, as the dashboard includes it.
//  - optionally OOD's own dynamic_forms.js (from an OOD source checkout), with jQuery in the head, as one
//    classic script after the form and before form.js, the way the dashboard's esbuild bundle
//    batch_connect_session_contexts.js has it, started as that bundle starts it: its handlers made when
//    jQuery is ready, only where bc_dynamic_js is on.
// Left out: the path selector's modal, Bootstrap's CSS.
import { createServer, type Server } from 'node:http';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { load } from 'js-yaml';

type Option = [string, string, Record<string, unknown>?];
interface Attribute { widget?: string; label?: string; help?: string; value?: unknown; min?: number; max?: number; step?: number; options?: Option[] }
interface FormYml { form: string[]; attributes: Record<string, Attribute> }

const escape = (text: unknown) => String(text).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/**
 * The dashboard renders each help text as Markdown; this renders the part of Markdown the app's help
 * texts use: paragraphs, "- " lists, **bold** and `code`.
 */
export function helpHtml(markdown: string): string {
  const inline = (text: string) => escape(text).replace(/\*\*(.+?)\*\*/g, '<strong>$1</strong>').replace(/`([^`]+)`/g, '<code>$1</code>');
  const html: string[] = [];
  let list = false;
  for (const line of markdown.split('\n')) {
    const item = /^\s*- (.*)$/.exec(line);
    if (item && !list) html.push('<ul>');
    if (!item && list) html.push('</ul>');
    list = Boolean(item);
    if (item) html.push(`<li>${inline(item[1]!)}</li>`);
    else if (line.trim()) html.push(`<p>${inline(line)}</p>`);
  }
  if (list) html.push('</ul>');
  return html.join('');
}

export interface FormPageOptions {
  /** The site's bc_dynamic_js: true, false, or null for a dashboard older than 3.1 (no #ood_config). */
  dynamicJs: boolean | null;
  /** Values the dashboard remembered from the last launch (it renders them as the fields' values). */
  remembered?: Record<string, string>;
  /** The markup of the dashboard's release: 4.1 and later (the default), 4.0, or 3.1. */
  markup?: 'wrapped' | 'bootstrap5' | 'bootstrap4';
  /** OOD's dashboard modules for oodBundle, and where the server has jQuery. */
  ood?: { modules: Array<[name: string, source: string]>; jquery: string };
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
    const markup = options.markup ?? 'wrapped';
    const group = `<div class="${markup === 'bootstrap4' ? 'form-group' : 'mb-3'}">`
      + `<label class="form-label" for="${htmlId}">${escape(a.label ?? id)}</label>${widget}`
      + `<small class="form-text text-muted">${helpHtml(a.help ?? '')}</small></div>`;
    return markup === 'wrapped'
      ? `<div id="${htmlId}_wrapper" data-widget-type="${a.widget ?? 'text_field'}" data-hide-by-default="false">${group}</div>`
      : group;
  }).join('\n');
  const config = options.dynamicJs === null ? '' : `<div hidden id="ood_config" data-bc-dynamic-js="${options.dynamicJs}"></div>`;
  const ood = options.ood ? `<script>${oodBundle(options.ood.modules)}
jQuery(function () {
  if (__ood_config.isBCDynamicJSEnabled()) __ood_dynamic_forms.makeChangeHandlers('batch_connect_session_context');
});</script>` : '';
  return `<!doctype html><html><head><meta charset="utf-8"><title>JupyterLab</title>
<style>body{font-family:sans-serif;max-width:46rem;margin:1rem auto}.mb-3{margin-bottom:.8rem}label{display:block;font-weight:bold}
.form-text{display:block;color:#666;font-size:.8rem}.form-text p,.form-text ul{margin:.2rem 0}code{font-size:.75rem}.invalid-feedback{color:#b00020;font-size:.85rem}.is-invalid{border:2px solid #b00020}
.alert{padding:.6rem;margin:.6rem 0;border:1px solid}.alert-warning{background:#fff3cd}.alert-info{background:#e7f3fe}.alert-danger{background:#f8d7da}
[hidden],.d-none{display:none!important}input,select{width:100%;padding:.3rem;box-sizing:border-box}.form-group{margin-bottom:.8rem}</style>
${options.ood ? `<script src="${options.ood.jquery}"></script>` : ''}</head><body>
${config}
<h2>JupyterLab</h2>
<form id="new_batch_connect_session_context" action="/launch" method="post" autocomplete="off">
${widgets}
<div class="d-grid gap-2"><input type="submit" name="commit" value="Launch" class="btn btn-primary"></div>
</form>
${ood}
<script>(function(){
${script}
}());</script>
</body></html>`;
}

/**
 * OOD's dashboard modules (config.js, utils.js, dynamic_forms.js, in that order) as one classic script, as
 * the dashboard's esbuild bundle has them: not in strict mode (dynamic_forms.js assigns a variable it
 * never declares, which a browser's native module would refuse), each module in a function of its own
 * that returns its exports as __ood_<name>. Only the forms of import and export these files use.
 */
export function oodBundle(modules: Array<[name: string, source: string]>): string {
  return modules.map(([name, source]) => {
    const exported: string[] = [];
    const body = source
      .replace(/^\s*['"]use strict['"];?/, '')
      .replace(/^import\s*\{([^}]*)\}\s*from\s*['"]\.\/(\w+)['"];?/gm, (_, names: string, from: string) => `var {${names}} = __ood_${from};`)
      .replace(/^export\s+(function|const|let|var|class)\s+([\w$]+)/gm, (_, kind: string, id: string) => { exported.push(id); return `${kind} ${id}`; })
      .replace(/^export\s*\{([^}]*)\};?/gm, (_, names: string) => { exported.push(...names.split(',').map((n) => n.trim()).filter(Boolean)); return ''; });
    if (/^\s*(import|export)\b/m.test(body)) throw new Error(`oodBundle: ${name}.js has an import or export form it does not know`);
    return `var __ood_${name} = (function () {\n${body}\nreturn { ${exported.join(', ')} };\n}());`;
  }).join('\n');
}

export interface FormServer {
  url: string; launches: string[]; setPage(html: string): void;
  /** Serve SCRIPT at PATH. */
  addScript(path: string, script: string): void;
  close(): Promise<void>;
}

/** Serves the page at /new (any query) and records each POST /launch: what the dashboard would submit. */
export async function serveForm(): Promise<FormServer> {
  let page = '';
  const launches: string[] = [];
  const scripts = new Map<string, string>();
  const server: Server = createServer((request, response) => {
    const script = scripts.get(request.url ?? '');
    if (script !== undefined) {
      response.setHeader('Content-Type', 'text/javascript; charset=utf-8');
      response.end(script);
      return;
    }
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
    addScript(path: string, script: string) { scripts.set(path, script); },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
