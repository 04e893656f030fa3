// A local stand-in for Cloudflare's API, serving the documented v4 envelopes
// (shapes from Cloudflare's documented formats, tests/vectors/inputs): Audit
// Logs v2 (cursor pages) and v1 (page numbers), Pages deployments lists
// (newest first, page numbers), and a Queue's HTTP pull consumer with leases,
// visibility timeouts and redelivery. Failures are scripted per test.
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
  };
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
        return send(res, 200, ok({ id: dm[1] }));
      }
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
