// The page: renders the notes and sends the worker its edits. The database
// and the sync run in the worker (worker.mjs), where OPFS is; several tabs
// share one database through it.
const worker = new Worker('./worker.mjs', { type: 'module' });
let nextId = 1;
const waiting = new Map();

/** Asks the worker to run `op`; resolves with its answer. */
function ask(op, args = {}) {
  const id = nextId++;
  worker.postMessage({ id, op, ...args });
  return new Promise((resolve, reject) => waiting.set(id, { resolve, reject }));
}

worker.onmessage = ({ data }) => {
  if (data.status !== undefined) {
    document.querySelector('#status').textContent = data.status;
    document.body.dataset.sync = data.status;
    return;
  }
  if (data.changed) {
    render();
    return;
  }
  const pending = waiting.get(data.id);
  waiting.delete(data.id);
  if (data.error) pending.reject(new Error(data.error));
  else pending.resolve(data.result);
};

async function render() {
  const notes = await ask('list');
  const list = document.querySelector('#notes');
  const editing = document.activeElement?.closest('.note')?.dataset.id;
  for (const note of notes) {
    let element = list.querySelector(`[data-id="${note.id}"]`);
    if (!element) {
      element = document.createElement('div');
      element.className = 'note';
      element.dataset.id = note.id;
      element.innerHTML = '<input name="title" placeholder="Title"><textarea name="body" rows="3"></textarea>';
      element.addEventListener('change', (event) =>
        ask('update', { note: { id: note.id, [event.target.name]: event.target.value } }).then(render));
      list.append(element);
    }
    if (note.id !== editing) {
      element.querySelector('[name=title]').value = note.title;
      element.querySelector('[name=body]').value = note.body;
    }
  }
  for (const element of list.querySelectorAll('.note'))
    if (!notes.some((note) => note.id === element.dataset.id)) element.remove();
}

document.querySelector('#add').addEventListener('click', async () => {
  await ask('add', { note: { id: crypto.randomUUID(), title: '', body: '' } });
  await render();
});

// For tests and the console: the same operations the page uses.
window.notes = { ask, render };
render();
