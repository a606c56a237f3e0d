// The console's shell: sign-in, the organization picker, navigation, and the router that renders each page
// (`#/{org}/{page}/{rest}?{query}`). Each page module exports `render(ctx, main)`; once its content is shown,
// `main[data-ready]` holds the hash it rendered (tests and the first-render figure wait for it).

import { api, holds, session } from './api.js';
import { h, fill, field, problem, select } from './dom.js';

const PAGES = {
  overview: { title: 'Overview', load: () => import('./overview.js') },
  content: { title: 'Content', load: () => import('./content.js'), needs: 'SEARCH_API:EXECUTE_QUERY' },
  item: { title: 'Item', load: () => import('./content.js'), hidden: true },
  logs: { title: 'Logs', load: () => import('./logs.js'), needs: 'PLATFORM:LOGS:VIEW' },
  errors: { title: 'Errors', load: () => import('./errors.js') },
  admin: { title: 'Administration', load: () => import('./admin.js'), needs: 'PLATFORM:SOURCE:VIEW' },
};

const main = document.getElementById('main');
const nav = document.getElementById('nav');
let organizations = null;
const allowed = new Map();
let leaving = [];

/** The route of the location's hash. */
function route() {
  const [path, search] = location.hash.replace(/^#\/?/, '').split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  return { parts, params: new URLSearchParams(search || '') };
}

/** Sets the hash (pages call it to change their query, e.g. a search). */
export function go(org, page, rest = [], params = {}) {
  const path = [org, page, ...rest].map(encodeURIComponent).join('/');
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== '' && v !== undefined && v !== null)).toString();
  location.hash = `#/${path}${query ? `?${query}` : ''}`;
}

async function pagesAllowed(org) {
  if (!allowed.has(org)) {
    const checks = Object.entries(PAGES).map(async ([name, page]) => [name, !page.needs || await holds(org, page.needs)]);
    allowed.set(org, new Map(await Promise.all(checks)));
  }
  return allowed.get(org);
}

function signInPage(message) {
  fill(nav);
  const key = h('input', { type: 'password', name: 'key', autocomplete: 'off', required: true, spellcheck: 'false' });
  const form = h('form', { class: 'card signin', onsubmit: async (event) => {
    event.preventDefault();
    session.signIn(key.value.trim());
    organizations = null;
    allowed.clear();
    location.hash = '#/';
    await render();
  } },
  h('h1', {}, 'Sign in to Intake'),
  h('p', {}, 'Paste an API key of an organization, or the master key (printed by ', h('code', {}, 'intake serve'),
    ' and kept in ', h('code', {}, 'intake-data/bootstrap.json'), '). It stays in this tab only, and every call is checked by the server.'),
  field('API key', key),
  h('button', { type: 'submit' }, 'Sign in'),
  message);
  fill(main, form);
  ready();
  key.focus();
}

function header(org, current) {
  const picker = select(organizations.map((o) => [o.id, o.displayName || o.id]), {
    'aria-label': 'Organization', value: org,
    onchange: (event) => go(event.target.value, current === 'item' ? 'content' : current),
  });
  return [
    h('a', { href: `#/${encodeURIComponent(org)}/overview`, class: 'brand' }, 'Intake'),
    picker,
    h('ul', {}, Object.entries(PAGES).filter(([name, page]) => !page.hidden && allowed.get(org)?.get(name)).map(([name, page]) =>
      h('li', {}, h('a', { href: `#/${encodeURIComponent(org)}/${name}`, 'aria-current': name === current || (current === 'item' && name === 'content') ? 'page' : false }, page.title)))),
    h('button', { type: 'button', class: 'signout', onclick: () => { session.signOut(); organizations = null; location.hash = '#/signin'; render(); } }, 'Sign out'),
  ];
}

let renders = 0;

async function render() {
  for (const stop of leaving) stop();
  leaving = [];
  const generation = ++renders;
  delete main.dataset.ready;
  const { parts, params } = route();
  if (!session.key || parts[0] === 'signin') return signInPage();
  try {
    organizations ??= await api('GET', '/rest/organizations');
  } catch (error) {
    if (error.status === 401) session.signOut();
    return signInPage(problem(error));
  }
  if (!organizations.length) return signInPage(problem({ code: 'ACCESS_DENIED', status: 403, message: 'This key may not view any organization.' }));
  let [org, page = 'overview', ...rest] = parts;
  if (org === 'errors') [org, page, rest] = [organizations[0].id, 'errors', parts.slice(1)];
  if (!org || !organizations.some((o) => o.id === org)) return go(organizations[0].id, 'overview');
  const pages = await pagesAllowed(org);
  if (!PAGES[page] || (pages.get(page) === false && page !== 'item')) return go(org, 'overview');
  if (generation !== renders) return;
  fill(nav, header(org, page));
  document.title = `${PAGES[page].title} · ${org} · Intake`;
  const ctx = { org, rest, params, go: (p, r, q) => go(org, p, r, q), onLeave: (stop) => (generation === renders ? leaving.push(stop) : stop()), can: pages };
  // Each render draws into its own view: a slower earlier render finishes into a view no longer shown.
  const view = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  fill(main, view);
  try {
    const module = await PAGES[page].load();
    await module.render(ctx, view);
  } catch (error) {
    fill(view, problem(error, org));
  }
  if (generation === renders) ready();
}

/** Marks the page rendered: for tests, and for the first-render figure (a performance mark). */
function ready() {
  main.dataset.ready = location.hash || '#/';
  performance.mark('intake:ready');
}

document.querySelector('.skip').addEventListener('click', (event) => { event.preventDefault(); main.focus(); });
window.addEventListener('hashchange', render);
render();
