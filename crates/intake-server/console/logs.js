// Log browser: the Logs API with its filters (source, operation, result, time range, document id patterns),
// paging, and a live tail that polls twice a second. Each outcome other than COMPLETED links to the explanation
// of its result; each document id opens the item.

import { api, orgPath } from './api.js';
import { h, fill, field, select, table, when, problem, notice } from './dom.js';

const OPERATIONS = ['ADD', 'ADD_BY_REFERENCE', 'BATCH_FILE', 'DELETE', 'DELETE_AND_CHILDREN', 'DELETE_OLDER_THAN', 'UPDATE'];
const RESULTS = ['COMPLETED', 'WARNING', 'SKIPPED', 'REJECTED', 'ERROR'];
const PER_PAGE = 50;
const TAIL_MS = 500;

/** Log entries as a table (the item page's history uses it too). */
export function logTable(ctx, entries, withDocument = true) {
  const org = encodeURIComponent(ctx.org);
  const rows = entries.map((e) => [
    when(e.datetime),
    e.result === 'COMPLETED' ? h('span', { class: 'badge ok' }, e.result)
      : h('a', { class: `badge r-${e.result.toLowerCase()}`, href: `#/${org}/errors/${e.result}` }, e.result),
    e.operation,
    withDocument ? h('a', { href: `#/${org}/item/${encodeURIComponent(`42.${e.sourceId}$${e.id}`)}`, class: 'docid' }, e.id) : null,
    h('code', {}, e.sourceId),
    e.meta?.orderingId ?? '',
    e.task,
    e.meta?.error || e.meta?.details || '',
  ].filter((cell) => cell !== null));
  const headers = ['Time (UTC)', 'Result', 'Operation', ...(withDocument ? ['Document'] : []), 'Source', 'Ordering id', 'Task', 'Reason'];
  return table(null, headers, rows, { class: 'log' });
}

export async function render(ctx, main) {
  const p = ctx.params;
  const sources = await api('GET', orgPath(ctx.org, '/sources')).catch(() => []);
  const controls = {
    source: select([['', 'any'], ...sources.map((s) => [s.id, s.name])], { name: 'source', value: p.get('source') || '' }),
    operation: select([['', 'any'], ...OPERATIONS], { name: 'operation', value: p.get('operation') || '' }),
    result: select([['', 'any'], ...RESULTS], { name: 'result', value: p.get('result') || '' }),
    from: h('input', { type: 'datetime-local', name: 'from', value: p.get('from') || '', step: 1 }),
    to: h('input', { type: 'datetime-local', name: 'to', value: p.get('to') || '', step: 1 }),
    documentId: h('input', { type: 'text', name: 'documentId', value: p.get('documentId') || '', placeholder: 'file://docs/*' }),
    matching: select(['EXACT', 'PARTIAL', 'WILDCARD'], { name: 'matching', value: p.get('matching') || 'WILDCARD' }),
  };
  const tail = h('input', { type: 'checkbox', name: 'tail', checked: p.get('tail') === '1' });
  const page = Math.max(0, Number(p.get('page')) || 0);
  const form = h('form', { class: 'card filters', onsubmit: (event) => {
    event.preventDefault();
    ctx.go('logs', [], { ...Object.fromEntries(Object.entries(controls).map(([k, c]) => [k, c.value])), tail: tail.checked ? '1' : '' });
  } },
  field('Source', controls.source), field('Operation', controls.operation), field('Result', controls.result),
  field('From (UTC)', controls.from), field('To (UTC)', controls.to),
  field('Document id', controls.documentId), field('Matching', controls.matching),
  h('div', { class: 'field inline' }, tail, h('label', { for: 'tail' }, 'Live tail (twice a second)')),
  h('button', { type: 'submit' }, 'Show'));
  tail.id = 'tail';
  tail.addEventListener('change', () => form.requestSubmit());
  const out = h('div', { 'aria-live': 'polite' });
  fill(main, h('h1', {}, 'Logs'), form, out);
  const query = () => {
    const utc = (local) => (local ? new Date(`${local}Z`).toISOString() : undefined);
    return {
      query: { from: utc(p.get('from')), to: utc(p.get('to')), documentId: p.get('documentId') || undefined,
        documentIdMatching: p.get('documentId') ? (p.get('matching') || 'WILDCARD') : undefined, page, perPage: PER_PAGE },
      body: {
        ...(p.get('source') ? { sourcesIds: [p.get('source')] } : {}),
        ...(p.get('operation') ? { operations: [p.get('operation')] } : {}),
        ...(p.get('result') ? { results: [p.get('result')] } : {}),
      },
    };
  };
  const show = async () => {
    try {
      const answer = await api('POST', `/logs/v1/organizations/${encodeURIComponent(ctx.org)}`, query());
      const entries = answer.documentLogEntries;
      fill(out,
        entries.length ? logTable(ctx, entries) : notice('No outcome matches (entries appear once their operation is committed).', 'warn'),
        h('nav', { class: 'pager', 'aria-label': 'Pages' },
          page > 0 ? h('a', { href: link(ctx, p, page - 1) }, '← Newer') : null, ' ',
          answer.hasNextPage ? h('a', { href: link(ctx, p, page + 1) }, 'Older →') : null),
        tail.checked ? h('p', { class: 'muted' }, `Live: updated ${when(Date.now())}`) : null);
    } catch (error) {
      fill(out, problem(error, ctx.org));
    }
  };
  await show();
  if (tail.checked) {
    let busy = false;
    const timer = setInterval(async () => {
      if (busy || document.hidden) return;
      busy = true;
      await show();
      busy = false;
    }, TAIL_MS);
    ctx.onLeave(() => clearInterval(timer));
  }
}

function link(ctx, params, page) {
  const next = new URLSearchParams(params);
  next.set('page', String(page));
  return `#/${encodeURIComponent(ctx.org)}/logs?${next}`;
}
