// The page's only way to make elements. Everything shown here may come from hostile data (document
// contents, ids, error messages), so data only ever enters the DOM as text nodes or as the value of
// a short list of inert attributes; links are built here from route segments, never taken from data.

import { url } from './api.js';

const ATTRS = new Set(['type', 'title', 'data-testid', 'disabled', 'value', 'placeholder', 'name', 'colspan', 'rows', 'spellcheck', 'role', 'hidden']);

/** h('td', { className: 'num', onclick: fn }, 'text', child, [more]): strings become text nodes. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value == null || value === false) continue;
    if (typeof value === 'function' && name.startsWith('on')) el.addEventListener(name.slice(2).toLowerCase(), value);
    else if (name === 'className') el.className = value;
    else if (name === 'value') el.value = String(value);
    else if (ATTRS.has(name) || name.startsWith('aria-')) el.setAttribute(name, value === true ? '' : String(value));
    else throw new Error(`h: the attribute ${name} is not allowed`);
  }
  add(el, children);
  return el;
}

/** Appends strings (as text), numbers, nodes and nested arrays; skips null, undefined and false. */
export function add(el, children) {
  for (const child of children) {
    if (child == null || child === false) continue;
    if (Array.isArray(child)) add(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Empties el and fills it with children. */
export function fill(el, ...children) {
  el.replaceChildren();
  return add(el, children);
}

/** The hash of an in-page route: every segment and query value is percent-encoded here. */
export const route = (segments, query) => `#${url(`/${segments.map((s) => encodeURIComponent(String(s))).join('/')}`, query)}`;

/** An in-page link to route(segments, query). */
export function link(segments, text, attrs, query) {
  const a = h('a', attrs, text);
  a.href = route(segments, query);
  return a;
}

export function date(ms) {
  if (ms == null) return '—';
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? String(ms) : d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
}

/** A JSON value as text; undefined (a field not there) as an em dash. */
export function json(value, pretty) {
  return value === undefined ? '—' : JSON.stringify(value, null, pretty ? 2 : undefined);
}

export function pre(value, testid) {
  return h('pre', { className: 'json', 'data-testid': testid }, json(value, true));
}

/** A table with a header row and an empty body (fill it with rows()). */
export function table(testid, headers) {
  return h('table', { 'data-testid': testid }, h('thead', null, h('tr', null, headers.map((x) => h('th', null, x)))), h('tbody'));
}

/** Appends <tr>s to a table's body; an empty table says so. */
export function rows(t, trs, empty = 'Nothing here.') {
  const body = t.tBodies[0];
  if (body.querySelector('tr.empty') && trs.length) body.replaceChildren();
  if (!trs.length && !body.rows.length) trs = [h('tr', { className: 'empty' }, h('td', { colspan: t.tHead.rows[0].cells.length }, empty))];
  add(body, trs);
}

/** A card: a titled box. */
export function card(title, ...children) {
  return h('section', { className: 'card' }, title && h('h2', null, title), children);
}

export const short = (id) => {
  const s = String(id ?? '');
  return h('code', { title: s }, s.length > 12 ? `${s.slice(0, 8)}…` : s);
};

// The error banner: one per page, always text. Errors carry { code, message } (ApiError or not).
export const banner = h('div', { className: 'error', 'data-testid': 'error', role: 'alert', hidden: true });

export function showError(error, note) {
  const code = String(error && error.code ? error.code : 'ERROR');
  const message = String(error && error.message ? error.message : error);
  fill(banner, h('strong', { 'data-testid': 'error-code' }, code), ' ', h('span', { 'data-testid': 'error-message' }, message), note && h('p', null, note));
  banner.hidden = false;
}

export function clearError() {
  banner.hidden = true;
  banner.replaceChildren();
}

/** A row: cells are <td>s or their contents. */
export const tr = (testid, cells, className) => h('tr', { 'data-testid': testid, className }, cells.map((c) => (c instanceof Node && c.tagName === 'TD' ? c : h('td', null, c))));

/** A number cell; a hot one is marked when above zero. */
export const num = (n, testid, hot) => h('td', { className: hot && n > 0 ? 'num hot' : 'num', 'data-testid': testid }, n == null ? '—' : String(n));
export const count = (n, testid) => num(n, testid, true);

/** A change type (CREATED, UPDATED, DELETED) as a coloured badge. */
export const badge = (type) => h('span', { className: `badge ${String(type).toLowerCase()}` }, type);

/** The breadcrumbs of a server view: Overview › ...items. */
export const crumbs = (...items) => h('nav', { className: 'crumbs' }, link([], 'Overview'), items.map((item) => [' › ', item]));

/**
 * A "More" button over a cursor-paged list: load() fetches the first page, a click the next.
 * @param {(cursor) => Promise<{items: unknown[], next: unknown}>} page
 * @param {(items: unknown[]) => void} show
 */
export function pager(label, testid, page, show) {
  let cursor = null;
  const more = h('button', { type: 'button', className: 'more', 'data-testid': testid, hidden: true }, label);
  const load = async () => {
    more.disabled = true;
    try {
      const { items, next } = await page(cursor);
      show(items);
      cursor = next;
      more.hidden = next == null;
    } finally {
      more.disabled = false;
    }
  };
  more.addEventListener('click', () => load().catch(showError));
  return { more, load, reset: () => (cursor = null) };
}
