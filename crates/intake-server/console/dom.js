// Building the page from data, safely: every value becomes a text node or an attribute set through the DOM,
// never markup. Nothing here (or anywhere in the console) puts a string into the page as HTML, so an item titled
// `<script>…</script>` shows as those characters (a test greps the files for the HTML-parsing sinks).

/** An element: `h('a', {href: '#/x', class: 'c', onclick: fn}, 'text', child, [more])`. */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2), value);
    else if (name === 'class') el.className = value;
    else if (name === 'value') el.value = value;
    else if (name === 'checked') el.checked = Boolean(value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

/** Appends strings (as text), nodes, and arrays of them; skips null, undefined and false. */
export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

/** Replaces an element's content. */
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

const SVG = 'http://www.w3.org/2000/svg';

/** An SVG element, attributes set one by one (no markup). */
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  for (const child of children.flat()) {
    if (child) el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** A table with a caption, header cells and rows of cells (each a value or a node). */
export function table(caption, headers, rows, props = {}) {
  return h('table', props,
    caption ? h('caption', {}, caption) : null,
    h('thead', {}, h('tr', {}, headers.map((title) => h('th', { scope: 'col' }, title)))),
    h('tbody', {}, rows.map((cells) => h('tr', {}, cells.map((cell) => h('td', {}, cell))))));
}

/** A labelled form control. */
export function field(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  return h('div', { class: 'field' }, h('label', { for: id }, label), control, hint ? h('small', {}, hint) : null);
}

/** A select of `[value, label]` pairs (or plain strings). */
export function select(options, props = {}) {
  return h('select', props, options.map((o) => {
    const [value, label] = Array.isArray(o) ? o : [o, o];
    return h('option', { value, selected: String(props.value ?? '') === String(value) }, label);
  }));
}

/** A section with a heading. */
export function section(title, ...children) {
  return h('section', { class: 'card' }, h('h2', {}, title), children);
}

/** Text with the given words marked (for excerpts): nodes only. */
export function highlighted(text, highlights = []) {
  const parts = [];
  let at = 0;
  for (const { offset, length } of [...highlights].sort((a, b) => a.offset - b.offset)) {
    if (offset < at || offset + length > text.length) continue;
    parts.push(text.slice(at, offset), h('mark', {}, text.slice(offset, offset + length)));
    at = offset + length;
  }
  parts.push(text.slice(at));
  return parts;
}

/** A date and time from epoch milliseconds or ISO 8601, in UTC, to the second. */
export function when(value) {
  if (value === null || value === undefined || value === '') return '—';
  const date = new Date(typeof value === 'number' ? value : String(value));
  return Number.isNaN(date.getTime()) ? String(value) : date.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

/** A whole number with thousands separators. */
export const count = (n) => (typeof n === 'number' ? n.toLocaleString('en-US') : '—');

/** An API failure shown in full: its code (linked to its explanation), message, resolution and request id. */
export function problem(error, org) {
  if (!error || !error.code) {
    return h('div', { class: 'problem', role: 'alert' }, h('strong', {}, 'Could not reach Intake: '), String(error?.message || error));
  }
  const base = org ? `#/${encodeURIComponent(org)}/errors/` : '#/errors/';
  return h('div', { class: 'problem', role: 'alert' },
    h('p', {}, h('a', { href: base + encodeURIComponent(error.code), class: 'code' }, error.code), ` (HTTP ${error.status}) `, error.message),
    error.resolution ? h('p', {}, h('strong', {}, 'What to do: '), error.resolution) : null,
    error.requestId ? h('p', { class: 'muted' }, `Request id ${error.requestId}`) : null);
}

/** A short confirmation or warning that announces itself to screen readers. */
export const notice = (text, kind = 'ok') => h('p', { class: `notice ${kind}`, role: 'status' }, text);

/** A button that runs an async action, disabled while it runs, and shows its failure next to it. */
export function action(label, run, props = {}) {
  const out = h('span', { class: 'action-out' });
  const button = h('button', {
    type: 'button', ...props,
    onclick: async () => {
      button.disabled = true;
      fill(out);
      try { await run(out); } catch (error) { fill(out, problem(error)); } finally { button.disabled = false; }
    },
  }, label);
  return h('span', { class: 'action' }, button, out);
}

/** A destructive action asked twice: the first click shows `question` with "Yes" and "Cancel" beside it. */
export function dangerous(label, question, run, props = {}) {
  const box = h('span', { class: 'action' });
  const ask = () => {
    const yes = action(`Yes, ${label.toLowerCase()}`, run, { class: 'danger', 'aria-label': `Confirm: ${props['aria-label'] || label}` });
    const cancel = h('button', { type: 'button', class: 'secondary', onclick: () => fill(box, first) }, 'Cancel');
    fill(box, h('span', { role: 'alert' }, question), ' ', yes, ' ', cancel);
    yes.querySelector('button').focus();
  };
  const first = h('button', { type: 'button', class: 'danger', ...props, onclick: ask }, label);
  return fill(box, first);
}
