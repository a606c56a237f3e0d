// Errors: every code of Intake's catalog (meaning, cause, resolution, the commands that reproduce it), what each
// item log result means, and a box that explains a pasted error answer.

import { api } from './api.js';
import { h, fill, field, section, notice } from './dom.js';

let catalog;

export async function render(ctx, main) {
  catalog ??= await api('GET', '/errors');
  const focus = ctx.rest[0];
  const pasted = h('textarea', { rows: 5, name: 'response', placeholder: '{"statusCode": 412, "errorCode": "INVALID_PARAMETER", "message": "…"}' });
  const explained = h('div', { 'aria-live': 'polite' });
  const form = h('form', { class: 'card', onsubmit: (event) => { event.preventDefault(); fill(explained, explain(pasted.value)); } },
    h('h2', {}, 'Explain a response'),
    field('An error answer of Intake (its JSON body, or the whole response with headers)', pasted),
    h('button', { type: 'submit' }, 'Explain'), explained);
  fill(main,
    h('h1', {}, 'Errors'),
    form,
    section('Item log results', h('p', {}, 'Each outcome in the logs has one of these results; the reason beside it names the exact cause.'),
      catalog.logResults.map((r) => entry(`result-${r.result}`, r.result, r.meaning, [
        h('p', {}, h('strong', {}, 'What to do. '), r.resolution)], focus === r.result))),
    section('Error codes', h('p', {}, 'Every error answer is JSON with statusCode, errorCode, message (naming the exact culprit), requestId and resolution.'),
      h('details', {}, h('summary', {}, 'Setup for the commands below'), catalog.setup.map((c) => h('pre', {}, c))),
      catalog.codes.map((c) => entry(`code-${c.errorCode}`, `${c.status} ${c.errorCode}`, c.meaning, details(c), focus === c.errorCode))));
  const target = focus && document.getElementById(`code-${focus}`) || document.getElementById(`result-${focus}`);
  if (target) target.scrollIntoView();
}

function entry(id, title, meaning, body, open) {
  return h('details', { id, class: 'entry', open },
    h('summary', {}, h('code', {}, title), ' — ', meaning), body);
}

function details(code) {
  return [
    h('p', {}, h('strong', {}, 'Cause. '), code.cause),
    h('p', {}, h('strong', {}, 'Resolution. '), code.resolution),
    code.reproduce ? [
      h('p', {}, h('strong', {}, 'Reproduce it. '), code.reproduce.text),
      code.reproduce.commands.map((c) => h('pre', { class: 'command' }, c)),
    ] : null,
  ];
}

/** Finds the JSON body in pasted text (a bare body or a whole HTTP response) and explains its code. */
export function explain(text) {
  const start = text.indexOf('{');
  let body = null;
  if (start >= 0) {
    try { body = JSON.parse(text.slice(start, text.lastIndexOf('}') + 1)); } catch { body = null; }
  }
  const code = body?.errorCode || (text.match(/\b[A-Z][A-Z_]{4,}\b/) || [])[0];
  const known = catalog.codes.find((c) => c.errorCode === code);
  if (!known) {
    return notice(body ? `This body has no errorCode of Intake's catalog${code ? ` (it says ${code})` : ''}.` : 'No JSON error body found in the text.', 'warn');
  }
  return h('div', { class: 'explained', 'data-testid': 'explained' },
    h('h3', {}, `${known.status} ${known.errorCode}`),
    h('p', {}, known.meaning),
    body?.message ? h('p', {}, h('strong', {}, 'This answer says: '), body.message) : null,
    body?.requestId ? h('p', {}, h('strong', {}, 'Request id: '), body.requestId, ' (find it in the server log).') : null,
    details(known));
}
