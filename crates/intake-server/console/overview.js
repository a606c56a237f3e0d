// Overview: the organization's state at a glance — paused or not, its sources with their item counts and
// status, the journal's backlog, items pushed and failed over the last hour or day, and usage against limits.

import { api, orgPath } from './api.js';
import { h, fill, section, table, count, when, problem, action, svg } from './dom.js';

const RESULTS = ['COMPLETED', 'WARNING', 'SKIPPED', 'REJECTED', 'ERROR'];
const REFRESH_MS = 5000;

export async function render(ctx, main) {
  const window = ctx.params.get('window') === 'day' ? 'day' : 'hour';
  const parts = {
    status: h('div'), sources: h('div'), activity: h('div'), limits: h('div'),
  };
  fill(main,
    h('h1', {}, `Overview of ${ctx.org}`),
    parts.status, parts.activity, parts.sources, parts.limits);
  const refresh = () => Promise.all([
    status(ctx, parts.status),
    sources(ctx, parts.sources),
    activity(ctx, parts.activity, window),
    limits(ctx, parts.limits),
  ]);
  await refresh();
  const timer = setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);
  ctx.onLeave(() => clearInterval(timer));
}

/** Runs `load` and fills `box` with what `show` makes of it; a 403 hides the part (the key may not see it). */
async function part(box, title, load, show, org) {
  try {
    fill(box, section(title, show(await load())));
  } catch (error) {
    fill(box, error.status === 403 ? null : section(title, problem(error, org)));
  }
}

function status(ctx, box) {
  return part(box, 'State', () => api('GET', orgPath(ctx.org, '/status')), (s) => {
    const toggle = s.paused
      ? action('Resume', async () => { await api('POST', orgPath(ctx.org, '/resume')); await status(ctx, box); })
      : action('Pause', async () => { await api('POST', orgPath(ctx.org, '/pause')); await status(ctx, box); });
    return h('p', { class: 'state' },
      h('span', { class: `badge ${s.paused ? 'warn' : 'ok'}`, 'data-testid': 'pause-state' }, s.paused ? 'PAUSED' : 'ACTIVE'),
      s.paused ? ' Push calls are refused with ORGANIZATION_IS_PAUSED until the organization is resumed. ' : ' Push calls are accepted. ',
      toggle);
  }, ctx.org);
}

async function sources(ctx, box) {
  const [list, counts] = await Promise.all([
    api('GET', orgPath(ctx.org, '/sources')).catch((error) => error),
    itemCounts(ctx),
  ]);
  if (list instanceof Error) {
    fill(box, list.status === 403 ? null : section('Sources', problem(list, ctx.org)));
    return;
  }
  const rows = list.map((s) => [
    h('a', { href: `#/${encodeURIComponent(ctx.org)}/content?source=${encodeURIComponent(s.name)}` }, s.name),
    h('code', {}, s.id),
    s.sourceType,
    s.sourceVisibility,
    h('span', { class: 'badge' }, s.information?.sourceStatus?.type || 'IDLE'),
    h('span', { 'data-testid': `items-${s.id}` }, counts ? count(counts.get(s.name) || 0) : '—'),
  ]);
  fill(box, section('Sources', table(null, ['Name', 'Id', 'Type', 'Visibility', 'Status', 'Items'], rows, { class: 'numbers-last' }),
    counts ? null : h('p', { class: 'muted' }, 'Item counts need a key that may search (SEARCH_API:EXECUTE_QUERY).')));
}

/** Items per source name, counted by the index (everything, not trimmed), or null if the key may not search. */
async function itemCounts(ctx) {
  try {
    const answer = await api('POST', '/rest/search/v2', { query: { organizationId: ctx.org }, body: {
      q: '', numberOfResults: 0, viewAllContent: true,
      facets: [{ facetId: 'source', field: 'source', type: 'specific', numberOfValues: 1000 }],
    } });
    const values = answer.facets?.[0]?.values || [];
    return new Map(values.map((v) => [v.value, v.numberOfResults]));
  } catch {
    return null;
  }
}

function activity(ctx, box, window) {
  return part(box, 'Activity', () => api('GET', `/logs/v1/organizations/${encodeURIComponent(ctx.org)}/activity`, { query: { window } }), (a) => {
    const switcher = h('p', { class: 'switch' }, 'Show the last ',
      ['hour', 'day'].map((w) => (w === window ? h('strong', { 'aria-current': 'true' }, w) : h('a', { href: `#/${encodeURIComponent(ctx.org)}/overview?window=${w}` }, w))).flatMap((el, i) => (i ? [' · ', el] : [el])));
    const totals = RESULTS.map((r) => h('li', { class: `total r-${r.toLowerCase()}` }, h('span', { class: 'swatch' }), `${r} `, h('strong', { 'data-testid': `total-${r}` }, count(a.totals[r] || 0))));
    const journal = h('p', {},
      'Journal: ', h('strong', { 'data-testid': 'backlog' }, count(a.journal.backlog)), ' accepted operations not applied yet',
      ` (durable through #${a.journal.durableSeq}, applied through #${a.journal.appliedSeq}; this organization committed through #${a.journal.committedSeq}).`);
    return [switcher, chart(a), h('ul', { class: 'totals' }, totals), journal];
  }, ctx.org);
}

/** Stacked bars of outcomes per bucket, drawn as SVG; its label says the totals for screen readers. */
function chart(a) {
  const width = 720, height = 160, pad = 24;
  const sums = a.buckets.map((b) => RESULTS.reduce((sum, r) => sum + (b.counts[r] || 0), 0));
  const max = Math.max(1, ...sums);
  const barWidth = (width - pad) / a.buckets.length;
  const bars = a.buckets.flatMap((b, i) => {
    let y = height - pad;
    return RESULTS.filter((r) => b.counts[r]).map((r) => {
      const barHeight = Math.max(1, (b.counts[r] / max) * (height - 2 * pad));
      y -= barHeight;
      return svg('rect', { x: pad + i * barWidth, y, width: Math.max(1, barWidth - 1), height: barHeight, class: `r-${r.toLowerCase()}` },
        svg('title', {}, `${when(b.start)}: ${b.counts[r]} ${r}`));
    });
  });
  const label = `Item outcomes from ${when(a.from)} to ${when(a.to)}: ` + RESULTS.map((r) => `${a.totals[r] || 0} ${r}`).join(', ');
  return svg('svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img', 'aria-label': label },
    svg('line', { x1: pad, y1: height - pad, x2: width, y2: height - pad, class: 'axis' }),
    svg('text', { x: 0, y: pad, class: 'tick' }, String(max)),
    svg('text', { x: pad, y: height - 6, class: 'tick' }, when(a.from).slice(11, 16)),
    svg('text', { x: width - 40, y: height - 6, class: 'tick' }, when(a.to).slice(11, 16)),
    bars);
}

function limits(ctx, box) {
  return part(box, 'Usage and limits', () => api('GET', orgPath(ctx.org, '/limits')), (report) => {
    const rows = Object.entries(report.content).map(([name, l]) => [
      h('code', {}, name),
      count(l.actualCount),
      l.limit === null ? 'unlimited' : count(l.limit),
      l.limit === null ? h('span', { class: 'muted' }, '—')
        : h('meter', { min: 0, max: Math.max(1, l.limit), value: Math.min(l.actualCount, l.limit), high: l.limit * 0.8, 'aria-label': `${name}: ${l.actualCount} of ${l.limit}` }),
    ]);
    return table(null, ['Limit', 'Used', 'Limit', ''], rows);
  }, ctx.org);
}
