// Test helpers: the Worker running for real in workerd (Miniflare), and small
// HTTP utilities. Other test files (and the C side's end-to-end test) reuse
// startWorker().
import { Miniflare } from 'miniflare';
import { createServer } from 'node:http';
import { createHmac, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export const WORKER_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
export const ROOT = join(WORKER_DIR, '..');

// The ingest routes are closed while their secrets are unset: whatever starts
// the Worker to post events to it sets these (or ALLOW_UNAUTHENTICATED) and
// sends the matching headers.
export const INGEST_SECRETS = { NOTIFY_SECRET: 'test-notify-secret', HOOK_TOKEN: 'test-hook-token' };
export const notifyHeaders = { 'content-type': 'application/json', 'cf-webhook-auth': INGEST_SECRETS.NOTIFY_SECRET };
export const hookHeaders = { authorization: `Bearer ${INGEST_SECRETS.HOOK_TOKEN}` };

// queue: bind EVENTS_QUEUE; consumer: also run a Worker consuming that queue
// that keeps each message (its body as received) in the KV namespace SEEN.
// queueDown: a function; while it returns true, sends to the queue fail as
// when the Queue is unavailable (the binding is the real queue, wrapped).
// onLog: receives each line the Worker logs, as {level, message}.
export async function startWorker({ bindings = {}, queue = false, consumer = false, queueDown = null, port = 0, persist, onLog } = {}) {
  const worker = {
    name: 'synccf',
    modules: true,
    modulesRoot: WORKER_DIR,
    scriptPath: join(WORKER_DIR, 'src', 'index.js'),
    modulesRules: [{ type: 'ESModule', include: ['**/*.js'] }],
    compatibilityDate: '2025-09-01',
    durableObjects: { EVENT_LOG: { className: 'EventLog', useSQLite: true } },
    bindings: { HEARTBEAT_SECONDS: '15', ...bindings },
    ...(queueDown ? { wrappedBindings: { EVENTS_QUEUE: 'queue-fault' } }
      : queue || consumer ? { queueProducers: { EVENTS_QUEUE: 'synccf-events' } } : {}),
  };
  const fault = {
    name: 'queue-fault', modules: true, queueProducers: { Q: 'synccf-events' },
    serviceBindings: { DOWN: async () => new Response(queueDown() ? '1' : '0') },
    script: `export default function (env) {
      const check = async () => {
        if ((await (await env.DOWN.fetch('http://fault/')).text()) === '1') throw new Error('Queue send failed: queue unavailable');
      };
      return {
        async send(body, opts) { await check(); return env.Q.send(body, opts); },
        async sendBatch(msgs, opts) { await check(); return env.Q.sendBatch(msgs, opts); },
      };
    }`,
  };
  const shared = {
    port, host: '127.0.0.1', ...(persist ? { durableObjectsPersist: persist } : {}),
    ...(onLog ? { structuredWorkerdLogs: true, handleStructuredLogs: onLog } : {}),
  };
  const mf = new Miniflare(consumer || queueDown ? { ...shared, workers: [worker, ...(queueDown ? [fault] : []), {
    name: 'consumer', modules: true, compatibilityDate: '2025-09-01', kvNamespaces: ['SEEN'],
    queueConsumers: { 'synccf-events': { maxBatchTimeout: 0.05 } },
    script: `export default { async queue(batch, env) {
      for (const m of batch.messages) await env.SEEN.put(m.id, JSON.stringify({ type: typeof m.body, body: m.body }));
    } };`,
  }] } : { ...worker, ...shared });
  const url = await mf.ready;
  return { mf, url: url.href.replace(/\/$/, ''), dispose: () => mf.dispose() };
}

export async function req(url, { method = 'POST', body, headers = {} } = {}) {
  const res = await fetch(url, { method, body, headers });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, json, text, headers: res.headers };
}

export const newSecret = () => 'whsec_' + randomBytes(24).toString('base64');

// A receiver like `synccf receive` at /v1/events: verifies Standard Webhooks
// signatures and answers as told by `respond(batch, n)` (default 200): a
// status, or [status, reason, headers] for the error body's reason and more
// response headers.
export async function startReceiver(secret, respond = () => 200) {
  const batches = [];
  let n = 0;
  const server = createServer((rq, rs) => {
    const chunks = [];
    rq.on('data', (c) => chunks.push(c));
    rq.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      const id = rq.headers['webhook-id'], ts = rq.headers['webhook-timestamp'];
      const key = Buffer.from(secret.slice(6), 'base64');
      const want = 'v1,' + createHmac('sha256', key).update(`${id}.${ts}.${body}`).digest('base64');
      const valid = rq.url === '/v1/events' && rq.headers['webhook-signature'] === want
        && Math.abs(Date.now() / 1000 - Number(ts)) < 300;
      const events = valid ? JSON.parse(body) : null;
      const answer = valid ? respond(events, n++) : 401;
      const [status, reason, headers] = Array.isArray(answer) ? answer : [answer, 'no'];
      batches.push({ status, id, events, valid, raw: body, at: Date.now() });
      rs.writeHead(status, { 'content-type': 'application/json', ...(status === 503 ? { 'retry-after': '0' } : {}), ...headers });
      rs.end(JSON.stringify(status === 200 ? { accepted: events.length, duplicates: 0 } : { error: 'no', reason }));
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}`, batches, close: () => new Promise((r) => server.close(r)) };
}

export async function until(what, fn, ms = 15000) {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// Reads Server-Sent Events until `stop(events)` is true; returns them.
export async function readSSE(url, headers, stop, ms = 10000) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), ms);
  const res = await fetch(url, { headers, signal: ctl.signal });
  const events = [];
  const comments = [];
  let buf = '';
  const dec = new TextDecoder();
  try {
    for await (const chunk of res.body) {
      buf += dec.decode(chunk, { stream: true });
      let i;
      while ((i = buf.indexOf('\n\n')) !== -1) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (block.startsWith(':')) { comments.push(block); continue; }
        const f = Object.fromEntries(block.split('\n').map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]));
        events.push({ id: Number(f.id), event: f.event, data: JSON.parse(f.data), raw: f.data });
      }
      if (stop(events, comments)) break;
    }
  } finally {
    clearTimeout(timer);
    ctl.abort();
  }
  return { events, comments, status: res.status };
}
