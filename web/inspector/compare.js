// What both inspectors compare: the field diff of two documents (an entity's history) and the
// side-by-side view of a conflict with its resolution buttons (the server's and a device's).

import { clearError, h, json, showError } from './dom.js';

const own = (doc, field) => doc != null && typeof doc === 'object' && Object.prototype.hasOwnProperty.call(doc, field);

/** JSON with sorted keys: two values are the same when their canonical texts are. */
function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value).sort().map((key) => `${JSON.stringify(key)}:${canonical(value[key])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export const same = (a, b) => canonical(a) === canonical(b);

/** The top-level fields of any of the documents (null, a deletion, has none), in first-seen order. */
export const fieldsOf = (...docs) => [...new Set(docs.flatMap((doc) => (doc && typeof doc === 'object' ? Object.keys(doc) : [])))];

/**
 * The top-level field diff from one document to the next (either may be null: none, deleted).
 * @returns {{field: string, kind: 'added' | 'removed' | 'changed', before?: unknown, after?: unknown}[]}
 */
export function diffFields(before, after) {
  const diffs = [];
  for (const field of fieldsOf(before, after)) {
    const had = own(before, field);
    const has = own(after, field);
    if (had && !has) diffs.push({ field, kind: 'removed', before: before[field] });
    else if (!had && has) diffs.push({ field, kind: 'added', after: after[field] });
    else if (!same(before[field], after[field])) diffs.push({ field, kind: 'changed', before: before[field], after: after[field] });
  }
  return diffs;
}

const value = (v) => h('code', null, json(v));

/** A diff as a table: field, what happened, old → new. */
export function diffTable(diffs) {
  if (!diffs.length) return h('p', { className: 'muted', 'data-testid': 'diff-none' }, 'No field changed.');
  return h(
    'table',
    { className: 'diff', 'data-testid': 'diff' },
    h('tbody', null, diffs.map((d) =>
      h('tr', { className: d.kind, 'data-testid': `diff-${d.kind}` },
        h('th', null, d.field),
        h('td', { className: 'kind' }, d.kind),
        h('td', null, d.kind !== 'added' && value(d.before), d.kind === 'changed' && ' → ', d.kind !== 'removed' && value(d.after))),
    )),
  );
}

/**
 * A conflict side by side, one row per top-level field, and its resolution buttons.
 * @param {object} o
 * @param {Node[]} o.title the heading's contents
 * @param {string[]} o.meta facts shown under the heading
 * @param {{key: string, label: string, data: object | null, partial?: boolean}[]} o.columns
 *   base and the two sides; a partial column (an UPDATED change) holds only the fields it set
 * @param {[number, number]} o.sides the columns whose differing fields are marked
 * @param {{label: string, testid: string, body: object}[]} o.choices the one-click resolutions
 * @param {object} o.merged what the merge editor starts from
 * @param {((body: object) => Promise<unknown>) | null} o.resolve null when read-only
 */
export function conflictView({ title, meta, columns, sides, choices, merged, resolve }) {
  const [left, right] = sides.map((i) => columns[i]);
  const differs = new Set(diffFields(left.data, right.data).filter((d) => !(d.kind === 'removed' && right.partial) && !(d.kind === 'added' && left.partial)).map((d) => d.field));
  const rows = fieldsOf(...columns.map((c) => c.data)).map((field) =>
    h('tr', { className: differs.has(field) ? 'differs' : null, 'data-testid': differs.has(field) ? 'differs' : 'same' },
      h('th', null, field),
      columns.map((c) => h('td', { className: own(c.data, field) ? null : 'muted' }, own(c.data, field) ? value(c.data[field]) : c.partial ? '(not set)' : '—')),
    ),
  );
  const head = columns.map((c) => h('th', { 'data-testid': `column-${c.key}` }, c.label, c.data == null ? ' (none)' : c.partial ? ' (fields set)' : ''));
  const box = h('section', { className: 'card conflict', 'data-testid': 'conflict' },
    h('h2', null, title),
    h('p', { className: 'meta' }, meta.filter(Boolean).join(' · ')),
    h('div', { className: 'scroll' }, h('table', { className: 'sides' }, h('thead', null, h('tr', null, h('th', null, 'Field'), head)), h('tbody', null, rows))),
  );
  if (!resolve) return box;

  const buttons = [];
  const editor = h('div', { className: 'merge', hidden: true });
  const run = async (body) => {
    clearError();
    buttons.forEach((b) => (b.disabled = true));
    try {
      await resolve(body);
    } catch (error) {
      showError(error);
      buttons.forEach((b) => (b.disabled = false));
    }
  };
  const text = h('textarea', { 'data-testid': 'merge-text', rows: 8, spellcheck: 'false', 'aria-label': 'Merged document (JSON)' });
  const save = () => {
    let data;
    try {
      data = JSON.parse(text.value);
    } catch (error) {
      return showError({ code: 'INVALID_JSON', message: `The merged document is not valid JSON: ${error.message}` });
    }
    if (!data || typeof data !== 'object' || Array.isArray(data)) return showError({ code: 'INVALID_JSON', message: 'The merged document must be a JSON object' });
    run({ use: 'merged', data });
  };
  const button = (label, testid, onclick, className) => {
    const b = h('button', { type: 'button', 'data-testid': testid, onclick, className }, label);
    buttons.push(b);
    return b;
  };
  const edit = () => {
    if (editor.hidden) text.value = JSON.stringify(merged, null, 2);
    editor.hidden = !editor.hidden;
    if (!editor.hidden) text.focus();
  };
  editor.append(text, h('div', { className: 'actions' }, button('Save merge', 'save-merge', save, 'primary')));
  box.append(h('div', { className: 'actions' }, choices.map((c) => button(c.label, c.testid, () => run(c.body))), button('Edit merge', 'edit-merge', edit)), editor);
  return box;
}
