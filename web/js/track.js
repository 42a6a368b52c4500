// track.js - the run page's tracking panel: the run's name, tags and notes,
// edited in place and saved with PATCH /v1/runs/{id}; the fields show what
// the server answered (the saved values), and its errors in the panel.

import {api} from './api.js';
import {h, fill} from './util.js';

// A tag as the server accepts it: 1..64 bytes of [A-Za-z0-9_.:/=+-].
const TAG_RE = /^[A-Za-z0-9_.:/=+-]{1,64}$/;

// trackPanel(id, onRun): {el, update(run)}; onRun(run) gets the run object of
// every successful PATCH.
export function trackPanel(id, onRun) {
  let run = null;
  let dirty = {name: false, notes: false};
  const status = h('span', {class: 'saved', id: 'track-status', 'aria-live': 'polite'});
  const err = h('div', {id: 'track-error'});
  const nameIn = h('input', {id: 'run-name', type: 'text', maxlength: 200, size: 40, 'aria-label': 'name',
    placeholder: 'a name for this run', oninput: () => { dirty.name = true; status.textContent = ''; },
    onkeydown: (ev) => { if (ev.key === 'Enter') save(); }});
  const tagsBox = h('span', {id: 'run-tags', class: 'tags-edit'});
  const tagIn = h('input', {id: 'tag-input', type: 'text', size: 16, 'aria-label': 'new tag', placeholder: 'new tag',
    onkeydown: (ev) => { if (ev.key === 'Enter') { ev.preventDefault(); addTag(); } }});
  const tagBtn = h('button', {id: 'tag-add', class: 'secondary', onclick: addTag}, 'Add tag');
  const notesIn = h('textarea', {id: 'run-notes', 'aria-label': 'notes', placeholder: 'notes: what this run tried, what came of it',
    oninput: () => { dirty.notes = true; status.textContent = ''; }});
  const saveBtn = h('button', {id: 'track-save', onclick: save}, 'Save name and notes');
  const el = h('section', {id: 'run-track'},
    h('h2', {}, 'Name, tags and notes'),
    h('div', {class: 'track'},
      h('label', {for: 'run-name'}, 'Name'), h('div', {class: 'row'}, nameIn),
      h('label', {for: 'tag-input'}, 'Tags'), h('div', {class: 'row'}, tagsBox, tagIn, tagBtn),
      h('label', {for: 'run-notes'}, 'Notes'), notesIn,
      h('span'), h('div', {class: 'row'}, saveBtn, status)),
    err);

  async function patch(body, what) {
    fill(err);
    try {
      const r = await api(`/v1/runs/${encodeURIComponent(id)}`, {method: 'PATCH', body});
      status.textContent = `${what} saved`;
      onRun(r);
      return r;
    } catch (e) {
      status.textContent = '';
      const p = e.problem;
      fill(err, h('div', {class: 'banner error', role: 'alert'}, `${what} not saved: ${e.message}`,
        p?.field ? h('code', {}, p.field) : null));
      return null;
    }
  }

  async function addTag() {
    const t = tagIn.value.trim();
    if (!t) return;
    if (!TAG_RE.test(t)) {
      fill(err, h('div', {class: 'banner error', role: 'alert'},
        `"${t}" is not a tag: 1 to 64 letters, digits or _ . : / = + -`));
      return;
    }
    tagBtn.disabled = true;
    const r = await patch({add_tags: [t]}, 'tag');
    tagBtn.disabled = false;
    if (r) tagIn.value = '';
  }

  function removeTag(t) {
    patch({remove_tags: [t]}, 'tag');
  }

  async function save() {
    const body = {};
    const name = nameIn.value.trim();
    if (dirty.name) body.name = name ? name : null;
    if (dirty.notes) body.notes = notesIn.value;
    if (!Object.keys(body).length) { status.textContent = 'nothing to save'; return; }
    saveBtn.disabled = true;
    const r = await patch(body, Object.keys(body).join(' and '));
    saveBtn.disabled = false;
    if (r) dirty = {name: false, notes: false};
  }

  // Shows a run's saved values; fields the user is editing are left alone.
  function update(r) {
    run = r;
    if (!dirty.name) nameIn.value = r.name ?? '';
    nameIn.placeholder = r.spec?.name ? `${r.spec.name} (from the spec)` : 'a name for this run';
    if (!dirty.notes) notesIn.value = r.notes ?? '';
    const tags = Array.isArray(r.tags) ? r.tags : [];
    tagsBox.dataset.tags = tags.join(',');
    fill(tagsBox, tags.length ? tags.map((t) => h('span', {class: 'tag', 'data-tag': t}, t,
      h('button', {class: 'x', title: `remove the tag ${t}`, 'aria-label': `remove ${t}`, onclick: () => removeTag(t)}, '×')))
      : h('span', {class: 'muted'}, 'none'));
  }

  return {el, update, get run() { return run; }};
}
