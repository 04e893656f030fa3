// A local stand-in for Cloudflare's API, serving the documented v4 envelopes
// (shapes from Cloudflare's documented formats, tests/vectors/inputs): Audit
// Logs v2 (cursor pages) and v1 (page numbers), Pages deployments lists
// (newest first, page numbers), and a Queue's HTTP pull consumer with leases,
// visibility timeouts and redelivery. Also what `synccf cloudflare setup`
// wires: alerting v3 webhook destinations and policies, Pages projects,
// Logpush jobs and ownership, event subscriptions, the workers.dev subdomain
// (paths and bodies as the official `cloudflare` package sends them).
// Failures are scripted per test.
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';

const ok = (result, extra = {}) => ({ success: true, errors: [], messages: [], result, ...extra });
const fail = (code, message) => ({ success: false, errors: [{ code, message }], messages: [], result: null });

export async function startFakeCloudflare({ token = 'cf-token', account = '9035f53656c247e895c5a6939ae8a0e0' } = {}) {
  const api = {
    token, account,
    audit: [],        // v2 entries, any order; served oldest first (direction=asc)
    pages: {},        // project name -> deployments, any order; served newest first
    v2: true,         // false: v2 answers 404 (the v1 fallback)
    script: [],       // responses to force, in order: { status, body?, headers? } or 'malformed'
    requests: [],     // what was asked, for assertions
    queue: [],        // { id, body, timestamp_ms, attempts, leasedUntil, lease_id, acked }
    acks: [], retries: [],
    // What `synccf cloudflare setup` wires, as Cloudflare stores it. Secrets
    // are kept (for the tests) but never returned, as Cloudflare does.
    webhooks: [], policies: [], jobs: { account: [] }, subscriptions: [],
    projects: {},     // Pages project name -> { id, name } (any name in pages also exists)
    workersSubdomain: 'example-sub',
  };
  let seq = 0;
  // Ids are a sequence, so two fakes given the same calls hand out the same ids
  // (the contract test compares synccf's requests with the official client's).
  let ids = 0;
  const uuid = () => `0000${api.account.slice(0, 4)}-0000-4000-8000-${String(++ids).padStart(12, '0')}`;
  const now = () => new Date().toISOString();
  const body = (raw) => { try { return JSON.parse(raw || '{}'); } catch { return null; } };
  // Cloudflare's answers for the wiring endpoints; true when it answered.
  function wiring(req, res, p, url, raw) {
    const m = req.method;
    const acct = `/client/v4/accounts/${api.account}`;
    const b = m === 'POST' || m === 'PUT' || m === 'PATCH' ? body(raw) : null;
    if ((m === 'POST' || m === 'PUT' || m === 'PATCH') && !b) { send(res, 400, fail(1001, 'Invalid JSON body')); return true; }
    let r;
    if (p === `${acct}/alerting/v3/destinations/webhooks`) {
      if (m === 'GET') { send(res, 200, ok(api.webhooks.map(({ secret, ...w }) => w))); return true; }
      if (m === 'POST') {
        if (!b.name || !b.url) { send(res, 400, fail(17001, 'name and url are required')); return true; }
        const w = { id: uuid(), name: b.name, url: b.url, secret: b.secret, type: 'generic', created_at: now(), last_success: null, last_failure: null };
        api.webhooks.push(w);
        send(res, 200, ok({ id: w.id })); return true;
      }
    }
    if ((r = /^\/client\/v4\/accounts\/[^/]+\/alerting\/v3\/destinations\/webhooks\/([^/]+)$/.exec(p)) && m === 'DELETE') {
      const i = api.webhooks.findIndex((x) => x.id === r[1]);
      if (i < 0) { send(res, 404, fail(17004, 'webhook not found')); return true; }
      if (api.policies.some((x) => x.mechanisms?.webhooks?.some((w) => w.id === r[1]))) { send(res, 400, fail(17105, 'destination is in use by a policy')); return true; }
      api.webhooks.splice(i, 1);
      send(res, 200, { success: true, errors: [], messages: [] }); return true;
    }
    if (p === `${acct}/alerting/v3/policies`) {
      if (m === 'GET') { send(res, 200, ok(api.policies)); return true; }
      if (m === 'POST') {
        if (!api.alertTypes.includes(b.alert_type)) { send(res, 400, fail(17103, `invalid alert_type: ${b.alert_type}`)); return true; }
        const pol = { ...b, id: uuid(), created: now(), modified: now() };
        api.policies.push(pol);
        send(res, 200, ok({ id: pol.id })); return true;
      }
    }
    if ((r = /^\/client\/v4\/accounts\/[^/]+\/alerting\/v3\/policies\/([^/]+)$/.exec(p))) {
      const i = api.policies.findIndex((x) => x.id === r[1]);
      if (i < 0) { send(res, 404, fail(17004, 'policy not found')); return true; }
      if (m === 'PUT') { api.policies[i] = { ...api.policies[i], ...b, modified: now() }; send(res, 200, ok({ id: r[1] })); return true; }
      if (m === 'DELETE') { api.policies.splice(i, 1); send(res, 200, { success: true, errors: [], messages: [] }); return true; }
    }
    if ((r = /^\/client\/v4\/accounts\/[^/]+\/pages\/projects\/([^/]+)$/.exec(p)) && m === 'GET') {
      const name = r[1];
      if (!api.projects[name] && !api.pages[name]) { send(res, 404, fail(8000007, 'Project not found. The specified project name does not match any of your existing projects.')); return true; }
      api.projects[name] ??= { id: uuid(), name, subdomain: `${name}.pages.dev`, created_on: now(), production_branch: 'main' };
      send(res, 200, ok(api.projects[name])); return true;
    }
    if (p === `${acct}/workers/subdomain` && m === 'GET') { send(res, 200, ok({ subdomain: api.workersSubdomain })); return true; }
    if ((r = /^\/client\/v4\/(accounts|zones)\/([^/]+)\/logpush\/(jobs|ownership|ownership\/validate)(?:\/(\d+))?$/.exec(p))) {
      const scope = r[1] === 'accounts' ? 'account' : r[2];
      if (r[1] === 'accounts' && r[2] !== api.account) return false;
      const jobs = (api.jobs[scope] ??= []);
      if (r[3] === 'ownership' && m === 'POST') { send(res, 200, ok({ filename: 'ownership-challenge-0a1b2c3d.txt', message: '', valid: true })); return true; }
      if (r[3] === 'ownership/validate' && m === 'POST') { send(res, 200, ok({ valid: true })); return true; }
      if (r[3] !== 'jobs') return false;
      if (!r[4] && m === 'GET') { send(res, 200, ok(jobs.map(({ filter, ...j }) => j))); return true; }
      // Cloudflare's rule for a job's name (the API reference's pattern).
      if ((m === 'POST' || m === 'PUT') && b.name != null && !/^[a-zA-Z0-9\-.]*$/.test(b.name)) {
        send(res, 400, fail(1004, `name: '${b.name}' does not match ^[a-zA-Z0-9\\-\\.]*$`)); return true;
      }
      if (!r[4] && m === 'POST') {
        if (!b.destination_conf || !b.dataset) { send(res, 400, fail(1002, 'destination_conf and dataset are required')); return true; }
        if (b.max_upload_bytes && (b.max_upload_bytes < 5e6 || b.max_upload_bytes > 1e9)) { send(res, 400, fail(1004, 'max_upload_bytes must be between 5MB and 1GB')); return true; }
        const job = { id: ++seq, dataset: b.dataset, destination_conf: b.destination_conf, enabled: !!b.enabled, name: b.name ?? null,
          output_options: b.output_options ?? null, filter: b.filter ?? null, max_upload_bytes: b.max_upload_bytes ?? 5e6,
          max_upload_records: b.max_upload_records ?? 100000, max_upload_interval_seconds: b.max_upload_interval_seconds ?? 30,
          kind: '', frequency: 'high', error_message: null, last_complete: null, last_error: null, logpull_options: null };
        jobs.push(job);
        send(res, 200, ok(job)); return true;
      }
      const i = jobs.findIndex((x) => String(x.id) === r[4]);
      if (r[4] && i < 0) { send(res, 404, fail(1003, 'job not found')); return true; }
      if (m === 'GET') { send(res, 200, ok(jobs[i])); return true; }
      if (m === 'PUT') { jobs[i] = { ...jobs[i], ...b }; send(res, 200, ok(jobs[i])); return true; }
      if (m === 'DELETE') { jobs.splice(i, 1); send(res, 200, ok({})); return true; }
    }
    if (p === `${acct}/event_subscriptions/subscriptions`) {
      if (m === 'GET') {
        const per = Number(url.searchParams.get('per_page') || 20), page = Number(url.searchParams.get('page') || 1);
        const slice = api.subscriptions.slice((page - 1) * per, page * per);
        send(res, 200, ok(slice, { result_info: { page, per_page: per, count: slice.length, total_count: api.subscriptions.length } })); return true;
      }
      if (m === 'POST') {
        if (!b.source?.type || !b.destination?.queue_id || !b.events?.length) { send(res, 400, fail(1001, 'source, destination and events are required')); return true; }
        const sub = { id: uuid().replace(/-/g, ''), created_at: now(), modified_at: now(), name: b.name, enabled: b.enabled ?? true,
          source: b.source, destination: b.destination, events: b.events };
        api.subscriptions.push(sub);
        send(res, 200, ok(sub)); return true;
      }
    }
    if ((r = /^\/client\/v4\/accounts\/[^/]+\/event_subscriptions\/subscriptions\/([^/]+)$/.exec(p))) {
      const i = api.subscriptions.findIndex((x) => x.id === r[1]);
      if (i < 0) { send(res, 404, fail(1003, 'subscription not found')); return true; }
      if (m === 'GET') { send(res, 200, ok(api.subscriptions[i])); return true; }
      if (m === 'PATCH') { Object.assign(api.subscriptions[i], b, { modified_at: now() }); send(res, 200, ok(api.subscriptions[i])); return true; }
      if (m === 'DELETE') { const [gone] = api.subscriptions.splice(i, 1); send(res, 200, ok(gone)); return true; }
    }
    return false;
  }
  api.alertTypes = ['pages_event_alert', 'dos_attack_l7', 'health_check_status_notification', 'failing_logpush_job_disabled_alert', 'incident_alert'];
  // The wired objects, for "the account is as before" assertions.
  api.wired = () => ({ webhooks: api.webhooks.length, policies: api.policies.length,
    jobs: Object.values(api.jobs).reduce((n, l) => n + l.length, 0), subscriptions: api.subscriptions.length });
  const send = (res, status, body, headers = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(typeof body === 'string' ? body : JSON.stringify(body));
  };
  const server = createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => { raw += c; });
    req.on('end', () => {
      const url = new URL(req.url, 'http://x');
      api.requests.push({ t: Date.now(), method: req.method, path: url.pathname, query: Object.fromEntries(url.searchParams), body: raw });
      if (req.headers.authorization !== `Bearer ${api.token}`)
        return send(res, 403, fail(10000, 'Authentication error'));
      const forced = api.script.shift();
      if (forced === 'malformed') return send(res, 200, '{"success":tru');
      if (forced) return send(res, forced.status, forced.body ?? fail(forced.status, 'scripted failure'), forced.headers);
      const p = url.pathname;
      const base = `/client/v4/accounts/${api.account}`;
      if (req.method === 'GET' && p === `${base}/logs/audit`) {
        if (!api.v2) return send(res, 404, fail(7003, 'Could not route to /logs/audit'));
        const since = Date.parse(url.searchParams.get('since')), before = Date.parse(url.searchParams.get('before'));
        if (Number.isNaN(since) || Number.isNaN(before)) return send(res, 400, fail(1001, 'since and before are required'));
        const limit = Number(url.searchParams.get('limit') || 100);
        const start = Number(url.searchParams.get('cursor') || 0);
        const all = api.audit.filter((e) => { const t = Date.parse(e.action.time); return t >= since && t < before; })
          .sort((a, b) => Date.parse(a.action.time) - Date.parse(b.action.time));
        const page = all.slice(start, start + limit);
        const next = start + limit < all.length ? String(start + limit) : '';
        return send(res, 200, ok(page, { result_info: { count: page.length, cursor: next } }));
      }
      if (req.method === 'GET' && p === `${base}/audit_logs`) {
        const since = Date.parse(url.searchParams.get('since')), before = Date.parse(url.searchParams.get('before'));
        const per = Number(url.searchParams.get('per_page') || 25), page = Number(url.searchParams.get('page') || 1);
        const all = api.audit.filter((e) => { const t = Date.parse(e.action.time); return t >= since && t < before; })
          .sort((a, b) => Date.parse(a.action.time) - Date.parse(b.action.time))
          .map((e) => ({ id: e.id, action: { info: e.action.description, result: true, type: e.action.type }, actor: { email: e.actor?.email, id: e.actor?.id, type: 'user' },
            interface: 'API', metadata: {}, newValue: '', oldValue: '', owner: { id: api.account }, resource: { id: e.resource.id, type: e.resource.type }, when: e.action.time }));
        const slice = all.slice((page - 1) * per, page * per);
        return send(res, 200, ok(slice, { result_info: { page, per_page: per, count: slice.length, total_count: all.length } }));
      }
      const pm = /^\/client\/v4\/accounts\/[^/]+\/pages\/projects\/([^/]+)\/deployments$/.exec(p);
      if (req.method === 'GET' && pm) {
        const list = api.pages[pm[1]];
        if (!list) return send(res, 404, fail(8000007, 'Project not found. The specified project name does not match any of your existing projects.'));
        const per = Number(url.searchParams.get('per_page') || 25), page = Number(url.searchParams.get('page') || 1);
        const all = [...list].sort((a, b) => Date.parse(b.created_on) - Date.parse(a.created_on));
        const slice = all.slice((page - 1) * per, page * per);
        return send(res, 200, ok(slice, { result_info: { page, per_page: per, count: slice.length, total_count: all.length, total_pages: Math.ceil(all.length / per) } }));
      }
      const dm = /^\/client\/v4\/accounts\/[^/]+\/alerting\/v3\/destinations\/webhooks\/([^/]+)$/.exec(p);
      if (req.method === 'PUT' && dm) {
        api.destinations = api.destinations || {};
        api.destinations[dm[1]] = JSON.parse(raw || '{}');
        const w = api.webhooks.find((x) => x.id === dm[1]);
        if (w) { const b = JSON.parse(raw || '{}'); Object.assign(w, { name: b.name, url: b.url }); if (b.secret) w.secret = b.secret; }
        return send(res, 200, ok({ id: dm[1] }));
      }
      if (wiring(req, res, p, url, raw)) return;
      const qm = /^\/client\/v4\/accounts\/[^/]+\/queues\/([^/]+)\/messages\/(pull|ack)$/.exec(p);
      if (req.method === 'POST' && qm) {
        const body = JSON.parse(raw || '{}');
        const now = Date.now();
        if (qm[2] === 'pull') {
          const n = body.batch_size ?? 10, vis = body.visibility_timeout_ms ?? 30000;
          const avail = api.queue.filter((m) => !m.acked && (!m.leasedUntil || m.leasedUntil <= now)).slice(0, n);
          for (const m of avail) { m.attempts++; m.leasedUntil = now + vis; m.lease_id = randomBytes(12).toString('base64url'); }
          const messages = avail.map((m) => ({ id: m.id, lease_id: m.lease_id, timestamp_ms: m.timestamp_ms, attempts: m.attempts,
            metadata: { 'CF-sourceMessageSource': 'event-subscription', 'CF-Content-Type': 'json' }, body: m.body }));
          return send(res, 200, ok({ message_backlog_count: api.queue.filter((m) => !m.acked).length, messages }));
        }
        api.acks.push(...(body.acks || []).map((a) => a.lease_id));
        api.retries.push(...(body.retries || []));
        for (const a of body.acks || []) { const m = api.queue.find((x) => x.lease_id === a.lease_id && x.leasedUntil > now); if (m) m.acked = true; }
        for (const r of body.retries || []) { const m = api.queue.find((x) => x.lease_id === r.lease_id); if (m) m.leasedUntil = now + (r.delay_seconds || 0) * 1000; }
        return send(res, 200, ok({ ackCount: (body.acks || []).length, retryCount: (body.retries || []).length, warnings: [] }));
      }
      return send(res, 404, fail(7003, 'No route for that URI'));
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  api.url = `http://127.0.0.1:${server.address().port}`;
  api.close = () => new Promise((r) => { server.closeAllConnections?.(); server.close(r); });
  return api;
}

// Synthetic audit entries in v2's shape, one every `stepMs` ending now.
export function auditEntries(n, stepMs = 60000, end = Date.now() - 1000) {
  return Array.from({ length: n }, (_, i) => ({
    id: `a${String(i).padStart(6, '0')}-19b1-40d6-954d-70cd5fbd52db`,
    account: { id: '9035f53656c247e895c5a6939ae8a0e0', name: 'Example Account' },
    action: { description: 'Update DNS record', result: 'success', time: new Date(end - (n - 1 - i) * stepMs).toISOString(), type: i % 2 ? 'update' : 'create' },
    actor: { id: 'f6b5de0326bb5182b8a4840ee01ec774', context: 'api_token', email: 'ci@example.com', ip_address: '198.51.100.7', type: 'user' },
    raw: { cf_ray_id: '8d1a2b3c4d5e6f70', method: 'PATCH', status_code: 200, uri: '/zones/x/dns_records/y', user_agent: 'curl' },
    resource: { id: `res-${i % 7}`, product: 'dns_records', request: {}, response: {}, scope: 'zones', type: 'dns_record' },
    zone: { id: '023e105f4ecef8ad9ca31a8372d0c353', name: 'example.com' },
  }));
}
