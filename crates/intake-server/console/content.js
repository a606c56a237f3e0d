// Content browser: search what is indexed as everyone or as one user (a search token for that user, so the
// results are trimmed exactly as that user's searches are), narrow by source and file type, and open an item:
// its metadata, permissions, stored text, and its whole history from the item log.

import { api, orgPath } from './api.js';
import { h, fill, field, section, table, select, highlighted, when, count, problem, notice } from './dom.js';

const PAGE_SIZE = 20;
const DATES = ['date', 'sysdate', 'indexeddate'];
const FACETS = [['source', 'Source'], ['filetype', 'File type']];
const tokens = new Map();

export async function render(ctx, main) {
  if (ctx.rest.length) return item(ctx, main, ctx.rest.join('/'));
  return browse(ctx, main);
}

/** A search token for a user of the Email Security Provider (cached for the page's life). */
async function tokenFor(org, user) {
  if (!tokens.has(`${org}\n${user}`)) {
    const answer = await api('POST', '/rest/search/v2/token', { query: { organizationId: org }, body: {
      userIds: [{ name: user, provider: 'Email Security Provider', type: 'User' }], validFor: 15 * 60 * 1000,
    } });
    tokens.set(`${org}\n${user}`, answer.token);
  }
  return tokens.get(`${org}\n${user}`);
}

/** A search: as everyone (viewAllContent) or as `user`. */
async function search(ctx, body, user) {
  const token = user ? await tokenFor(ctx.org, user) : undefined;
  return api('POST', '/rest/search/v2', { query: { organizationId: ctx.org }, token, body: { ...body, ...(user ? {} : { viewAllContent: true }) } });
}

const quote = (value) => `"${String(value).replace(/[\\"]/g, (c) => `\\${c}`)}"`;

async function browse(ctx, main) {
  const p = ctx.params;
  const q = p.get('q') || '';
  const user = p.get('as') || '';
  const first = Math.max(0, Number(p.get('first')) || 0);
  const selected = Object.fromEntries(FACETS.map(([name]) => [name, p.getAll(name)]));
  const queryInput = h('input', { type: 'search', name: 'q', value: q, placeholder: 'Words, "a phrase", @field==value…' });
  const userInput = h('input', { type: 'email', name: 'as', value: user, placeholder: 'everyone (no trimming)', list: 'known-users' });
  const known = h('datalist', { id: 'known-users' });
  knownUsers(ctx).then((names) => fill(known, names.map((name) => h('option', { value: name }))));
  const submit = (event) => {
    event.preventDefault();
    ctx.go('content', [], { q: queryInput.value, as: userInput.value.trim(), ...pick(selected) });
  };
  const form = h('form', { class: 'card search', role: 'search', onsubmit: submit },
    field('Search', queryInput),
    field('As user', userInput, 'An e-mail of the Email Security Provider: results are trimmed to what that user may see.'), known,
    h('button', { type: 'submit' }, 'Search'));
  const results = h('div', { class: 'results', 'aria-live': 'polite' });
  const facets = h('div', { class: 'facets' });
  fill(main, h('h1', {}, 'Content'), form, h('div', { class: 'browse' }, facets, results));
  const body = {
    q, firstResult: first, numberOfResults: PAGE_SIZE, excerptLength: 200, sortCriteria: q ? 'relevancy' : 'date descending',
    facets: FACETS.map(([name]) => ({
      facetId: name, field: name, type: 'specific', numberOfValues: 20,
      currentValues: selected[name].map((value) => ({ value, state: 'selected' })),
    })),
  };
  let answer;
  try {
    answer = await search(ctx, body, user);
  } catch (error) {
    fill(results, problem(error, ctx.org));
    return;
  }
  fill(facets, answer.facets.map((f) => facetBox(ctx, f, selected, q, user)));
  const shown = answer.results.length;
  fill(results,
    h('p', { 'data-testid': 'total' }, shown ? `Results ${count(first + 1)}–${count(first + shown)} of ${count(answer.totalCount)}` : 'No results.',
      user ? ` as ${user}` : ' (everything, untrimmed)'),
    h('ol', { class: 'hits', start: first + 1 }, answer.results.map((r) => hit(ctx, r))),
    pager(ctx, first, answer.totalCount, q, user, selected));
}

/** The users pushed to the organization's providers (a few hundred at most), for the "as user" picker; none
 * when the key may not read the security cache. */
async function knownUsers(ctx) {
  try {
    const providers = await api('GET', orgPath(ctx.org, '/securityproviders'));
    const pages = await Promise.all(providers.slice(0, 10).map((p) =>
      api('GET', orgPath(ctx.org, `/securitycache/entities/${encodeURIComponent(p.id)}/members`), { query: { perPage: 200 } })
        .catch(() => ({ items: [] }))));
    const users = pages.flatMap((page) => page.items.filter((m) => m.type === 'User').map((m) => m.name));
    return [...new Set(users)].sort().slice(0, 500);
  } catch {
    return [];
  }
}

const pick = (selected) => Object.fromEntries(Object.entries(selected).filter(([, v]) => v.length).map(([k, v]) => [k, v[0]]));

function facetBox(ctx, facet, selected, q, user) {
  const label = FACETS.find(([name]) => name === facet.facetId)?.[1] || facet.field;
  const chosen = selected[facet.facetId] || [];
  return h('fieldset', { class: 'facet' }, h('legend', {}, label),
    facet.values.length ? h('ul', {}, facet.values.map((v) => {
      const on = chosen.includes(v.value);
      const params = { q, as: user, ...pick(selected), [facet.facetId]: on ? '' : v.value };
      const href = `#/${encodeURIComponent(ctx.org)}/content?${new URLSearchParams(Object.entries(params).filter(([, x]) => x))}`;
      return h('li', {}, h('a', { href, 'aria-current': on ? 'true' : false, class: on ? 'on' : '' }, v.value || '(none)'), ' ', h('span', { class: 'muted' }, count(v.numberOfResults)));
    })) : h('p', { class: 'muted' }, 'No values.'));
}

function hit(ctx, r) {
  const href = `#/${encodeURIComponent(ctx.org)}/item/${encodeURIComponent(r.uniqueId)}`;
  return h('li', { class: 'hit' },
    h('h3', {}, h('a', { href }, highlighted(r.title || r.uri, r.titleHighlights))),
    h('p', { class: 'uri' }, r.printableUri || r.uri),
    h('p', { class: 'meta' }, `${r.raw?.source ?? ''} · ${r.raw?.filetype ?? ''} · ${when(r.raw?.date)}`),
    r.excerpt ? h('p', { class: 'excerpt' }, highlighted(r.excerpt, r.excerptHighlights)) : null);
}

function pager(ctx, first, total, q, user, selected) {
  const link = (label, at) => h('a', { href: `#/${encodeURIComponent(ctx.org)}/content?${new URLSearchParams(Object.entries({ q, as: user, ...pick(selected), first: at }).filter(([, x]) => x !== '' && x !== undefined))}` }, label);
  return h('nav', { class: 'pager', 'aria-label': 'Pages' },
    first > 0 ? link('← Previous', Math.max(0, first - PAGE_SIZE)) : null, ' ',
    first + PAGE_SIZE < total ? link('Next →', first + PAGE_SIZE) : null);
}

/** `42.{source id}${uri}`: Coveo's uniqueId, as Intake makes it. */
function parseUniqueId(uniqueId) {
  const dollar = uniqueId.indexOf('$');
  return { uri: uniqueId.slice(dollar + 1) };
}

async function item(ctx, main, uniqueId) {
  const { uri } = parseUniqueId(uniqueId);
  const parts = { meta: h('div'), permissions: h('div'), text: h('div'), history: h('div') };
  fill(main, h('p', {}, h('a', { href: `#/${encodeURIComponent(ctx.org)}/content` }, '← Content')),
    h('h1', { class: 'item-title' }, uri), parts.meta, parts.permissions, parts.history, parts.text);
  await Promise.all([
    metadata(ctx, parts.meta, main.querySelector('h1'), uniqueId, uri),
    permissions(ctx, parts.permissions, uri),
    storedText(ctx, parts.text, uniqueId),
    history(ctx, parts.history, uri),
  ]);
}

async function metadata(ctx, box, title, uniqueId, uri) {
  try {
    // The same URI may be in several sources: the result with this uniqueId is the item.
    const answer = await search(ctx, { q: '', aq: `@uri==${quote(uri)}`, numberOfResults: 100 });
    const r = answer.results.find((result) => result.uniqueId === uniqueId);
    if (!r) {
      fill(box, section('Metadata', notice('Not in the index (never pushed, deleted, or not committed yet). Its history below says which.', 'warn')));
      return;
    }
    fill(title, r.title || r.uri);
    const shown = (name, value) => {
      if (Array.isArray(value)) return value.join('; ');
      return DATES.includes(name) && typeof value === 'number' ? `${when(value)} (${value})` : String(value);
    };
    const rows = Object.entries(r.raw).sort(([a], [b]) => a.localeCompare(b)).map(([name, value]) => [h('code', {}, name), shown(name, value)]);
    fill(box, section('Metadata', h('p', {}, h('strong', {}, 'URI: '), r.uri), table(null, ['Field', 'Value'], rows)));
  } catch (error) {
    fill(box, section('Metadata', problem(error, ctx.org)));
  }
}

async function permissions(ctx, box, uri) {
  try {
    const answer = await api('GET', orgPath(ctx.org, `/indexes/default/documents/${encodeURIComponent(uri)}/permissions`));
    fill(box, section('Permissions', permissionTable(answer)));
  } catch (error) {
    fill(box, error.status === 403 ? null : section('Permissions', error.status === 404 ? notice('Not in the index.', 'warn') : problem(error, ctx.org)));
  }
}

/** Whatever shape the permissions answer has: its levels, sets and identities as nested lists of text. */
function permissionTable(answer) {
  const show = (value) => {
    if (Array.isArray(value)) return value.length ? h('ul', {}, value.map((v) => h('li', {}, show(v)))) : h('span', { class: 'muted' }, 'none');
    if (value && typeof value === 'object') {
      return h('dl', {}, Object.entries(value).flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, show(v))]));
    }
    return String(value);
  };
  return show(answer);
}

async function storedText(ctx, box, uniqueId) {
  try {
    const html = await api('POST', '/rest/search/v2/html', { query: { organizationId: ctx.org, uniqueId }, body: { uniqueId, viewAllContent: true } });
    // The quickview page is parsed as an inert document (scripts never run in one) and only its text is kept.
    // Its own <style> is dropped first: the console's policy refuses inline styles, even in an inert document.
    const page = String(html).replace(/<style[^>]*>[\s\S]*?<\/style>/gi, '');
    const text = new DOMParser().parseFromString(page, 'text/html').body.textContent || '';
    fill(box, section('Stored text', h('p', { class: 'muted' }, `${count(text.length)} characters`), h('pre', { class: 'stored' }, text)));
  } catch (error) {
    fill(box, section('Stored text', error.status === 404 ? notice('No stored text (the item is not in the index).', 'warn') : problem(error, ctx.org)));
  }
}

async function history(ctx, box, uri) {
  try {
    const from = new Date(Date.now() - 14 * 24 * 3600 * 1000).toISOString();
    const answer = await api('POST', `/logs/v1/organizations/${encodeURIComponent(ctx.org)}`, {
      query: { documentId: uri, from, perPage: 200 }, body: {},
    });
    const { logTable } = await import('./logs.js');
    fill(box, section('History', answer.documentLogEntries.length
      ? logTable(ctx, answer.documentLogEntries, false)
      : notice('No outcome in the last 14 days (not pushed yet, or not committed yet).', 'warn')));
  } catch (error) {
    fill(box, error.status === 403 ? null : section('History', problem(error, ctx.org)));
  }
}
