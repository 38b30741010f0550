/**
 * The console: one static page that calls the REST API (`/sim/v1/…`) and redraws itself every two
 * seconds. Everything a service or a user typed is put into the page as text (never as HTML).
 */
export function consolePage(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>mt-paas market simulator</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #222; }
  h1 { font-size: 1.3rem; } h2 { font-size: 1.05rem; margin-top: 1.6rem; }
  table { border-collapse: collapse; width: 100%; }
  th, td { border-bottom: 1px solid #ddd; padding: .25rem .5rem; text-align: left; vertical-align: top; }
  th { background: #f4f4f4; }
  .status-active, .status-healthy, .status-delivered, .status-completed { color: #17702f; }
  .status-blocked, .status-down, .status-cancelled, .status-deleted, .status-provisioning_failed, .status-failed, .status-rejected, .status-expired, .status-dropped { color: #a31515; }
  .status-pending, .status-provisioning, .status-requested, .status-degraded, .status-held { color: #8a6100; }
  button { margin-right: .25rem; } #error { color: #a31515; } small { color: #666; }
</style>
</head>
<body>
<h1>mt-paas market simulator</h1>
<p><small>REST API: <a href="/docs">/docs</a> · JWKS: <a href="/.well-known/jwks.json">/.well-known/jwks.json</a> · refreshes every 2 s</small></p>
<p id="error" role="alert"></p>

<h2>Services</h2>
<table id="services"><thead><tr><th>id</th><th>base URL</th><th>protocol</th><th>health</th><th>last heartbeat</th><th>metrics</th></tr></thead><tbody></tbody></table>

<h2>Applications</h2>
<table id="applications"><thead><tr><th>#</th><th>service</th><th>tenant</th><th>kind</th><th>plan</th><th>status</th><th>demo ends</th><th></th></tr></thead><tbody></tbody></table>

<h2>Tenants</h2>
<table id="tenants"><thead><tr><th>service</th><th>tenant</th><th>status</th><th>reported by service</th><th>plan</th><th>expires</th><th>access</th><th></th></tr></thead><tbody></tbody></table>

<h2>Deliveries</h2>
<table id="deliveries"><thead><tr><th>id</th><th>service</th><th>event</th><th>tenant</th><th>status</th><th>attempts</th><th>last answer</th><th></th></tr></thead><tbody></tbody></table>

<h2>Usage</h2>
<table id="usage"><thead><tr><th>service</th><th>tenant</th><th>meter</th><th>period</th><th>quantity</th><th>records</th></tr></thead><tbody></tbody></table>

<h2>Audit alerts</h2>
<table id="alerts"><thead><tr><th>service</th><th>type</th><th>severity</th><th>details</th><th>at</th></tr></thead><tbody></tbody></table>

<script>
const PLANS = [];
function cell(text, cls) {
  const td = document.createElement('td');
  td.textContent = text === null || text === undefined ? '' : String(text);
  if (cls) td.className = cls;
  return td;
}
function statusCell(status) { return cell(status, 'status-' + String(status)); }
function button(label, action) {
  const b = document.createElement('button');
  b.type = 'button'; b.textContent = label;
  b.addEventListener('click', async () => { b.disabled = true; try { await action(); } finally { b.disabled = false; await refresh(true); } });
  return b;
}
async function api(method, path, body) {
  const response = await fetch(path, { method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) { document.getElementById('error').textContent = (data.error && data.error.message) || ('HTTP ' + response.status); throw new Error('HTTP ' + response.status); }
  document.getElementById('error').textContent = '';
  return data;
}
function fill(id, rows, render) {
  const body = document.querySelector('#' + id + ' tbody');
  const trs = rows.map((row) => { const tr = document.createElement('tr'); render(row, tr); return tr; });
  body.replaceChildren(...trs);
}
async function refresh(force) {
  // A plan being chosen is not redrawn under the user's hand.
  if (force !== true && document.activeElement && document.activeElement.tagName === 'SELECT') return;
  try {
    const [services, applications, tenants, deliveries, usage, alerts] = await Promise.all([
      api('GET', '/sim/v1/services'), api('GET', '/sim/v1/applications'), api('GET', '/sim/v1/tenants'),
      api('GET', '/sim/v1/deliveries?limit=100'), api('GET', '/sim/v1/usage'), api('GET', '/sim/v1/audit-alerts'),
    ]);
    fill('services', services.services, (s, tr) => {
      tr.dataset.service = s.id;
      tr.append(cell(s.id), cell(s.baseUrl), cell(s.protocol), statusCell(s.health.status), cell(s.health.last_seen_at), cell(JSON.stringify(s.health.metrics)));
    });
    fill('applications', applications.applications, (a, tr) => {
      tr.dataset.application = String(a.id);
      const actions = document.createElement('td');
      if (a.status === 'requested') {
        actions.append(button('Approve', () => api('POST', '/sim/v1/applications/' + a.id + '/approve')));
        actions.append(button('Reject', () => api('POST', '/sim/v1/applications/' + a.id + '/reject', {})));
      } else if (a.status === 'approved' || a.status === 'completed') {
        actions.append(button('Cancel', () => api('POST', '/sim/v1/applications/' + a.id + '/cancel', {})));
      }
      tr.append(cell(a.id), cell(a.serviceId), cell(a.tenantId), cell(a.kind), cell(a.plan), statusCell(a.status), cell(a.demoExpiresAt), actions);
    });
    fill('tenants', tenants.tenants, (t, tr) => {
      tr.dataset.tenant = t.serviceId + '/' + t.tenantId;
      const path = '/sim/v1/services/' + encodeURIComponent(t.serviceId) + '/tenants/' + encodeURIComponent(t.tenantId);
      const actions = document.createElement('td');
      if (t.status === 'blocked' || t.status === 'expired') actions.append(button('Unblock', () => api('POST', path + '/unblock', {})));
      else if (t.status === 'active') actions.append(button('Block', () => api('POST', path + '/block', {})));
      if (t.status === 'deleted' || t.status === 'cancelled') { tr.append(cell(t.serviceId), cell(t.tenantId), statusCell(t.status), cell(t.reportedStatus), cell(t.plan), cell(t.expiresAt), cell(''), actions); return; }
      const select = document.createElement('select');
      select.setAttribute('aria-label', 'plan of ' + t.tenantId);
      for (const plan of PLANS) { const o = document.createElement('option'); o.value = plan.id; o.textContent = plan.name; o.selected = plan.id === t.plan; select.append(o); }
      actions.append(select, button('Change plan', () => api('POST', path + '/plan', { plan: select.value })));
      const access = document.createElement('td');
      if (t.accessUrl) { const link = document.createElement('a'); link.textContent = 'open'; link.href = t.accessUrl; access.append(link); }
      tr.append(cell(t.serviceId), cell(t.tenantId), statusCell(t.status), cell(t.reportedStatus), cell(t.plan), cell(t.expiresAt), access, actions);
    });
    fill('deliveries', deliveries.deliveries, (d, tr) => {
      tr.dataset.delivery = d.id;
      const actions = document.createElement('td');
      if (d.status !== 'held') actions.append(button('Replay', () => api('POST', '/sim/v1/deliveries/' + encodeURIComponent(d.id) + '/replay')));
      tr.append(cell(d.id), cell(d.serviceId), cell(d.eventType), cell(d.tenantId), statusCell(d.status), cell(d.attempts), cell(d.lastStatus ?? d.lastError), actions);
    });
    fill('usage', usage.totals, (u, tr) => tr.append(cell(u.serviceId), cell(u.tenantId), cell(u.meter), cell(u.period), cell(u.quantity), cell(u.records)));
    fill('alerts', alerts.alerts, (a, tr) => tr.append(cell(a.serviceId), cell(a.alertType), cell(a.severity), cell(JSON.stringify(a.details)), cell(a.at)));
    window.consoleReady = true;
  } catch (error) { /* shown in #error */ }
}
api('GET', '/sim/v1/plans').then((data) => { PLANS.push(...data.plans); return refresh(true); });
setInterval(refresh, 2000);
</script>
</body>
</html>
`;
}
