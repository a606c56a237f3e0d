// Administration: sources, API keys (value shown once), fault rules, limits, security providers and resolving a
// user's identities. Each part shows only if the key may see it; the server checks every call anyway.

import { api, orgPath } from './api.js';
import { h, fill, field, select, section, table, when, count, problem, notice, action, dangerous } from './dom.js';

const PRIVILEGE_SETS = {
  push: ['Push to every source', [{ owner: 'PLATFORM', targetDomain: 'SOURCE', type: 'EDIT', targetId: '*' }]],
  search: ['Search', [{ owner: 'SEARCH_API', targetDomain: 'EXECUTE_QUERY', targetId: '*' }]],
  logs: ['Read the logs', [{ owner: 'PLATFORM', targetDomain: 'LOGS', type: 'VIEW', targetId: '*' }]],
  connector: ['Connector: push, search, logs, create fields', [
    { owner: 'PLATFORM', targetDomain: 'SOURCE', type: 'EDIT', targetId: '*' },
    { owner: 'SEARCH_API', targetDomain: 'EXECUTE_QUERY', targetId: '*' },
    { owner: 'PLATFORM', targetDomain: 'LOGS', type: 'VIEW', targetId: '*' },
    { owner: 'PLATFORM', targetDomain: 'FIELD', type: 'EDIT', targetId: '*' }]],
};

export async function render(ctx, main) {
  const boxes = ['sources', 'keys', 'faults', 'limits', 'providers', 'resolve'].map((name) => [name, h('div', { id: `admin-${name}` })]);
  fill(main, h('h1', {}, 'Administration'), boxes.map(([, box]) => box));
  const parts = Object.fromEntries(boxes);
  await Promise.all([
    sources(ctx, parts.sources), keys(ctx, parts.keys), faults(ctx, parts.faults),
    limits(ctx, parts.limits), providers(ctx, parts.providers, parts.resolve),
  ]);
}

/** Loads a list; a 403 hides the part (the key may not see it), another failure is shown in it. */
async function part(box, title, load, show, org) {
  try {
    fill(box, section(title, await show(await load())));
  } catch (error) {
    fill(box, error.status === 403 ? null : section(title, problem(error, org)));
  }
}

function sources(ctx, box) {
  const reload = () => sources(ctx, box);
  return part(box, 'Sources', () => api('GET', orgPath(ctx.org, '/sources')), (list) => {
    const name = h('input', { type: 'text', name: 'name', required: true, maxlength: 255 });
    const type = select(['PUSH', 'CATALOG'], { name: 'sourceType' });
    const visibility = select(['SECURED', 'SHARED', 'PRIVATE'], { name: 'sourceVisibility' });
    const out = h('div');
    const form = h('form', { class: 'inline-form', onsubmit: async (event) => {
      event.preventDefault();
      try {
        await api('POST', orgPath(ctx.org, '/sources'), { body: { name: name.value, sourceType: type.value, sourceVisibility: visibility.value } });
        await reload();
      } catch (error) { fill(out, problem(error, ctx.org)); }
    } }, field('Name', name), field('Type', type), field('Visibility', visibility), h('button', { type: 'submit' }, 'Create source'), out);
    const rows = list.map((s) => [s.name, h('code', {}, s.id), s.sourceType, s.sourceVisibility, when(s.createdDate),
      dangerous('Delete', `Delete source ${s.name} and every item in it?`, async () => { await api('DELETE', orgPath(ctx.org, `/sources/${encodeURIComponent(s.id)}`)); await reload(); }, { 'aria-label': `Delete source ${s.name}` })]);
    return [table(null, ['Name', 'Id', 'Type', 'Visibility', 'Created', ''], rows), form];
  }, ctx.org);
}

function keys(ctx, box, created) {
  const reload = (key) => keys(ctx, box, key);
  return part(box, 'API keys', () => api('GET', orgPath(ctx.org, '/apikeys')), (list) => {
    const name = h('input', { type: 'text', name: 'displayName', required: true });
    const set = select([...Object.entries(PRIVILEGE_SETS).map(([k, [label]]) => [k, label]), ['custom', 'These privileges:']], { name: 'privileges' });
    const custom = h('input', { type: 'text', name: 'custom', placeholder: 'PLATFORM:SOURCE:EDIT:my-source, SEARCH_API:EXECUTE_QUERY', size: 48 });
    const out = h('div', { 'aria-live': 'polite' });
    const form = h('form', { class: 'inline-form', onsubmit: async (event) => {
      event.preventDefault();
      try {
        const privileges = set.value === 'custom' ? parsePrivileges(custom.value) : PRIVILEGE_SETS[set.value][1];
        const key = await api('POST', orgPath(ctx.org, '/apikeys'), { body: { displayName: name.value, privileges } });
        await reload(key);
      } catch (error) { fill(out, problem(error, ctx.org)); }
    } }, field('Name', name), field('Privileges', set), field('Custom privileges', custom, 'OWNER:DOMAIN[:TYPE[:TARGET]], comma-separated; the server refuses what your key does not hold'),
    h('button', { type: 'submit' }, 'Create key'), out);
    const rows = list.map((k) => [k.displayName, h('code', {}, k.id), h('span', { class: `badge ${k.status === 'ENABLED' ? 'ok' : 'warn'}` }, k.status),
      k.privileges.map((p) => [p.owner, p.targetDomain, p.type, p.targetId].filter(Boolean).join(':')).join(', '), when(k.createdDate),
      h('span', {}, k.enabled
        ? action('Disable', async () => { await api('PUT', orgPath(ctx.org, `/apikeys/${k.id}/disable`)); await reload(); }, { 'aria-label': `Disable key ${k.displayName}` })
        : action('Enable', async () => { await api('PUT', orgPath(ctx.org, `/apikeys/${k.id}/activate`)); await reload(); }, { 'aria-label': `Enable key ${k.displayName}` }),
      ' ', dangerous('Delete', `Delete key ${k.displayName}? Programs using it are refused from then on.`, async () => { await api('DELETE', orgPath(ctx.org, `/apikeys/${k.id}`)); await reload(); }, { 'aria-label': `Delete key ${k.displayName}` }))]);
    const shown = created && h('div', { class: 'created', role: 'status' },
      h('p', {}, 'Key ', h('code', {}, created.id), ' created. Copy its value now: it is shown this once (Intake keeps only its hash).'),
      h('output', { class: 'secret', 'data-testid': 'new-key' }, created.value));
    return [shown, table(null, ['Name', 'Id', 'Status', 'Privileges', 'Created', ''], rows), form];
  }, ctx.org);
}

/** `PLATFORM:SOURCE:EDIT:src, SEARCH_API:EXECUTE_QUERY` as privileges, read as `intake admin key create
 * --privilege` reads them: OWNER:DOMAIN[:TYPE[:TARGET]], the target `*` when left out. */
function parsePrivileges(text) {
  return text.split(',').map((p) => p.trim()).filter(Boolean).map((p) => {
    const [owner, targetDomain, type, targetId] = p.split(':');
    return { owner, targetDomain, ...(type ? { type } : {}), targetId: targetId || '*' };
  });
}

function faults(ctx, box) {
  const reload = () => faults(ctx, box);
  return part(box, 'Fault rules', () => api('GET', orgPath(ctx.org, '/faults')), (list) => {
    const status = select(['503', '500', '502', '504', '429'], { name: 'status' });
    const countInput = h('input', { type: 'number', name: 'count', min: 1, value: 1 });
    const percent = h('input', { type: 'number', name: 'percent', min: 0, max: 100, placeholder: 'instead of a count' });
    const route = h('input', { type: 'text', name: 'route', placeholder: '*/documents' });
    const out = h('div');
    const form = h('form', { class: 'inline-form', onsubmit: async (event) => {
      event.preventDefault();
      const rule = { status: Number(status.value), ...(percent.value ? { percent: Number(percent.value), seed: 1 } : { count: Number(countInput.value) }), ...(route.value ? { route: route.value } : {}) };
      try { await api('POST', orgPath(ctx.org, '/faults'), { body: rule }); await reload(); } catch (error) { fill(out, problem(error, ctx.org)); }
    } }, field('Status', status), field('Next N calls', countInput), field('Or a percentage', percent), field('Route pattern', route), h('button', { type: 'submit' }, 'Add rule'), out);
    const rows = list.map((r) => [h('code', {}, r.id), r.kind || (r.percent !== undefined ? 'percent' : 'count'), r.status, r.route || 'every route',
      r.remaining ?? (r.percent !== undefined ? `${r.percent}%` : '—'), count(r.fired), action('Remove', async () => { await api('DELETE', orgPath(ctx.org, `/faults/${encodeURIComponent(r.id)}`)); await reload(); }, { class: 'danger', 'aria-label': `Remove fault rule ${r.id}` })]);
    return [list.length ? table(null, ['Id', 'Kind', 'Status', 'Route', 'Left', 'Fired', ''], rows) : h('p', { class: 'muted' }, 'No rule: every call is served normally.'), form];
  }, ctx.org);
}

function limits(ctx, box) {
  const reload = () => limits(ctx, box);
  return part(box, 'Limits', () => api('GET', orgPath(ctx.org, '/limits')), (report) => {
    const rows = Object.entries(report.content).map(([name, l]) => {
      const input = h('input', { type: 'number', min: 0, name, value: l.limit ?? '', 'aria-label': `New value of ${name}`, placeholder: 'unlimited' });
      const out = h('span');
      const set = h('form', { class: 'limit-form', onsubmit: async (event) => {
        event.preventDefault();
        try {
          await api('PUT', orgPath(ctx.org, `/limits/${name}`), { body: { value: input.value === '' ? null : Number(input.value) } });
          await reload();
        } catch (error) { fill(out, problem(error, ctx.org)); }
      } }, input, h('button', { type: 'submit' }, 'Set'), ' ',
      action('Reset', async () => { await api('DELETE', orgPath(ctx.org, `/limits/${name}`)); await reload(); }, { 'aria-label': `Reset ${name}` }), out);
      return [h('code', {}, name), count(l.actualCount), l.limit === null ? 'unlimited' : count(l.limit), set];
    });
    return table(null, ['Limit', 'Used', 'Limit', 'Change (master key)'], rows);
  }, ctx.org);
}

async function providers(ctx, box, resolveBox) {
  await part(box, 'Security providers', () => api('GET', orgPath(ctx.org, '/securityproviders')), (list) =>
    table(null, ['Id', 'Type', 'Identities', 'Cascades to', 'Default for sources'], list.map((p) => [h('code', {}, p.id), p.type || '',
      count(p.statistics?.totalNumberOfEntities ?? 0), Object.keys(p.cascadingSecurityProviders || {}).join(', ') || '—',
      (p.referencedBy || []).map((r) => r.id).join(', ') || '—'])), ctx.org);
  if (!box.firstChild) return;
  const user = h('input', { type: 'text', name: 'user', required: true, placeholder: 'ada@example.com' });
  const provider = h('input', { type: 'text', name: 'provider', value: 'Email Security Provider' });
  const out = h('div', { 'aria-live': 'polite' });
  fill(resolveBox, section('Resolve a user', h('form', { class: 'inline-form', onsubmit: async (event) => {
    event.preventDefault();
    try {
      const answer = await api('POST', orgPath(ctx.org, `/securitycache/entities/${encodeURIComponent(provider.value)}/members/parents`), {
        query: { recursive: 'true', perPage: 1000 }, body: { name: user.value, type: 'User', provider: provider.value },
      });
      const members = answer.items || [];
      fill(out, members.length
        ? table(`${user.value} resolves to ${members.length} identities`, ['Name', 'Type', 'Provider', 'How'], members.map((m) => [m.name, m.type, m.provider, m.relation || '']))
        : notice(`${user.value} resolves to no other identity.`, 'warn'));
    } catch (error) { fill(out, problem(error, ctx.org)); }
  } }, field('User', user), field('Provider', provider), h('button', { type: 'submit' }, 'Resolve'), out)));
}
