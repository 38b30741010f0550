/**
 * The demo's web page: it finds the tenant with `@mt-paas/middleware/client` (`?tenant=`, a cookie or
 * the subdomain — seed 002 §2.2) and talks to the API through its fetch, which adds `X-Tenant-ID`.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

/** The browser bundle of `@mt-paas/middleware/client` (it imports nothing, so it loads as one module). */
export async function readTenantClientBundle(): Promise<string> {
  return readFile(fileURLToPath(import.meta.resolve('@mt-paas/middleware/client')), 'utf8');
}

export const DEMO_PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>mt-paas demo tutor</title>
  <style>
    body { font: 15px/1.5 system-ui, sans-serif; max-width: 44rem; margin: 2rem auto; padding: 0 1rem; }
    .error { color: #a11; } li { margin: .3rem 0; } input, textarea { width: 100%; margin: .2rem 0; }
  </style>
</head>
<body>
  <h1>mt-paas demo tutor</h1>
  <p id="tenant">Finding your institution…</p>
  <section id="app" hidden>
    <h2>Notes</h2>
    <ul id="notes"></ul>
    <form id="add-note">
      <input id="title" placeholder="Title" required>
      <textarea id="body" placeholder="Note" required></textarea>
      <button type="submit">Add note</button>
    </form>
    <h2>Ask</h2>
    <form id="ask">
      <input id="question" placeholder="Ask about your notes" required>
      <button type="submit">Ask</button>
    </form>
    <p id="answer"></p>
  </section>
  <p id="error" class="error"></p>
  <script type="module">
    import { createTenantFetch, detectTenant } from '/assets/tenant-client.js';

    const found = detectTenant({ persist: true });
    const api = createTenantFetch();
    const $ = (id) => document.getElementById(id);

    async function call(path, init) {
      const response = await api(path, init);
      const body = await response.json();
      if (!response.ok) throw new Error(body.error ? body.error.code + ': ' + body.error.message : response.statusText);
      return body;
    }

    async function showNotes() {
      const notes = await call('/notes');
      $('notes').replaceChildren(...notes.map((note) => {
        const item = document.createElement('li');
        item.textContent = note.title + ' — ' + note.body;
        return item;
      }));
    }

    function fail(error) { $('error').textContent = error.message; }

    if (found === undefined) {
      $('tenant').textContent = 'No institution in this address: open the page with ?tenant=<your tenant id>.';
    } else {
      $('tenant').textContent = 'Institution: ' + found.tenantId + ' (from the ' + found.source + ')';
      $('app').hidden = false;
      showNotes().catch(fail);
      $('add-note').addEventListener('submit', (event) => {
        event.preventDefault();
        call('/notes', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ title: $('title').value, body: $('body').value }),
        }).then(() => { $('title').value = ''; $('body').value = ''; return showNotes(); }).catch(fail);
      });
      $('ask').addEventListener('submit', (event) => {
        event.preventDefault();
        call('/ask?q=' + encodeURIComponent($('question').value))
          .then((result) => { $('answer').textContent = result.answer; })
          .catch(fail);
      });
    }
    window.demoReady = true;
  </script>
</body>
</html>`;
