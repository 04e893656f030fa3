// The Worker in workerd: every route, authentication, bad input, dedupe,
// retention, pull paging and SSE resume, push with retries, the queue.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { startWorker, startReceiver, req, newSecret, until, readSSE, ROOT } from './helpers.mjs';

const inputs = join(ROOT, 'tests', 'vectors', 'inputs');
const fixture = (n) => readFileSync(join(inputs, n));
const SECRETS = { NOTIFY_SECRET: 'notify-s3cret', HOOK_TOKEN: 'hook-t0ken', PULL_TOKEN: 'pull-t0ken' };
const J = { 'content-type': 'application/json' };
const notifyH = { ...J, 'cf-webhook-auth': SECRETS.NOTIFY_SECRET };
const hookH = { authorization: `Bearer ${SECRETS.HOOK_TOKEN}` };
const pullH = { authorization: `Bearer ${SECRETS.PULL_TOKEN}` };

async function pullAll(url, after = 0) {
  const out = [];
  for (;;) {
    const r = await req(`${url}/v1/events?after=${after}&limit=3`, { method: 'GET', headers: pullH });
    assert.equal(r.status, 200, r.text);
    out.push(...r.json.events);
    after = r.json.next;
    if (!r.json.more) return out;
  }
}

test('every route stores what Cloudflare sends, once, and answers after storing', async () => {
  const w = await startWorker({ bindings: SECRETS });
  try {
    const cases = [
      ['/hooks/notifications', fixture('pages-deployment-success.json'), notifyH, 1],
      ['/hooks/notifications', fixture('ddos-l7.json'), notifyH, 1],
      ['/hooks/logpush/http_requests', fixture('http_requests.ndjson.gz'), hookH, 4],
      ['/hooks/logpush/http_requests', fixture('validation-test.txt.gz'), hookH, 0],
      ['/hooks/generic/deploy', fixture('generic-deploy.json'), { ...J, ...hookH }, 1],
      // xplat's routes, now authenticated
      ['/webhook/pages', fixture('pages-deployment-failed.json'), notifyH, 1],
      ['/webhook/alert', fixture('health-check.json'), { ...J, ...hookH }, 1],
      ['/logpush?dataset=workers_trace_events', fixture('workers_trace_events.ndjson.gz'), hookH, 5],
    ];
    for (const [path, body, headers, n] of cases) {
      const r = await req(w.url + path, { body, headers });
      assert.equal(r.status, 200, `${path}: ${r.text}`);
      assert.equal(r.json.accepted, n, path);
      const again = await req(w.url + path, { body, headers });
      assert.equal(again.json.accepted, 0, `${path} again`);
      assert.equal(again.json.duplicates, n, `${path} again`);
    }
    const all = await pullAll(w.url);
    assert.equal(all.length, 14);
    assert.deepEqual(all.map((e) => e.seq), [...all.keys()].map((i) => all[0].seq + i), 'sequence numbers without gaps');
    assert.ok(all.every((e) => e.event.synccfvia === 'worker'));
    assert.equal(all[0].event.id, 'pages-3b6c1f0e-2a4d-4c5e-8f9a-b0c1d2e3f4a5-success');
    assert.equal((await req(w.url + '/healthz', { method: 'GET' })).status, 200);
    assert.equal((await req(w.url + '/health', { method: 'GET' })).status, 200);
    const st = await req(w.url + '/v1/status', { method: 'GET', headers: pullH });
    assert.equal(st.json.events, 14);
    assert.equal(st.json.duplicates, 14);
  } finally { await w.dispose(); }
});

test('authentication and bad input: clear status, nothing stored', async () => {
  const w = await startWorker({ bindings: { ...SECRETS, MAX_BODY: '4096', MAX_DECOMPRESSED: '1048576' } });
  try {
    const note = fixture('ddos-l7.json');
    const cases = [
      ['/hooks/notifications', note, J, 401],
      ['/hooks/notifications', note, { ...J, 'cf-webhook-auth': 'wrong' }, 401],
      ['/webhook/alert', note, J, 401],
      ['/hooks/logpush/http_requests', fixture('http_requests.ndjson'), { authorization: 'Bearer nope' }, 401],
      ['/hooks/generic/x', '{}', J, 401],
      ['/hooks/notifications', '{"a":', notifyH, 400],
      ['/hooks/notifications', '[1]', notifyH, 400],
      ['/hooks/generic/x', '"str"', { ...J, ...hookH }, 400],
      ['/hooks/notifications', note, { ...notifyH, 'content-type': 'text/plain' }, 415],
      ['/hooks/notifications', '{"x":"' + 'a'.repeat(5000) + '"}', notifyH, 413],
      ['/hooks/logpush/http_requests', gzipSync(Buffer.alloc(8 << 20, 0x20)), hookH, 413],
      ['/hooks/logpush/Bad-Name', '{}', hookH, 404],
      ['/nowhere', '{}', J, 404],
    ];
    for (const [path, body, headers, status] of cases) {
      const r = await req(w.url + path, { body, headers });
      assert.equal(r.status, status, `${path} ${status}: ${r.text}`);
      assert.equal(typeof r.json?.error, 'string');
    }
    assert.equal((await req(w.url + '/hooks/notifications', { method: 'GET' })).status, 405);
    assert.equal((await req(w.url + '/v1/events', { method: 'GET' })).status, 401);
    assert.equal((await req(w.url + '/v1/stream', { method: 'GET', headers: { authorization: 'Bearer x' } })).status, 401);
    assert.equal((await req(w.url + '/v1/status', { method: 'GET' })).status, 401);
    assert.equal((await req(w.url + '/v1/events?after=-1', { method: 'GET', headers: pullH })).status, 400);
    const mixed = await req(w.url + '/hooks/logpush/http_requests', { body: fixture('mixed.ndjson'), headers: hookH });
    assert.deepEqual(mixed.json, { accepted: 2, duplicates: 0, rejected: 2 });
    assert.equal((await pullAll(w.url)).length, 2, 'only the good records');
  } finally { await w.dispose(); }
});

test('retention keeps the newest events and never reuses a sequence number', async () => {
  const w = await startWorker({ bindings: { ...SECRETS, RETENTION_MAX_EVENTS: '3' } });
  try {
    for (let i = 0; i < 5; i++) {
      const r = await req(w.url + '/hooks/generic/ret', { body: JSON.stringify({ id: `r${i}` }), headers: { ...J, ...hookH } });
      assert.equal(r.json.accepted, 1);
    }
    const left = await pullAll(w.url);
    assert.deepEqual(left.map((e) => e.seq), [3, 4, 5]);
    assert.deepEqual(left.map((e) => e.event.data.id), ['r2', 'r3', 'r4']);
    const st = (await req(w.url + '/v1/status', { method: 'GET', headers: pullH })).json;
    assert.equal(st.oldestSeq, 3);
    assert.equal(st.newestSeq, 5);
  } finally { await w.dispose(); }
});

test('SSE: backlog, live events, heartbeats, resume with Last-Event-ID', async () => {
  const w = await startWorker({ bindings: { ...SECRETS, HEARTBEAT_SECONDS: '1' } });
  try {
    const post = (i) => req(w.url + '/hooks/generic/sse', { body: JSON.stringify({ id: `s${i}` }), headers: { ...J, ...hookH } });
    for (let i = 0; i < 3; i++) await post(i);
    // Live: the stream gets the backlog, then an event posted while connected.
    const live = readSSE(`${w.url}/v1/stream`, pullH, (ev) => ev.length >= 4);
    await new Promise((r) => setTimeout(r, 300));
    await post(3);
    const got = await live;
    assert.equal(got.status, 200);
    assert.deepEqual(got.events.map((e) => e.id), [1, 2, 3, 4]);
    assert.ok(got.events.every((e) => e.event === 'cloudevent'));
    assert.equal(got.events[3].data.data.id, 's3');
    // Resume after 2: only 3 and 4. Then idle long enough for heartbeats.
    const resumed = await readSSE(`${w.url}/v1/stream`, { ...pullH, 'last-event-id': '2' }, (ev, c) => ev.length >= 2 && c.filter((x) => x === ': hb').length >= 2, 8000);
    assert.deepEqual(resumed.events.map((e) => e.id), [3, 4]);
    assert.ok(resumed.comments.filter((x) => x === ': hb').length >= 2, 'heartbeats');
    const q = await readSSE(`${w.url}/v1/stream?after=3`, pullH, (ev) => ev.length >= 1);
    assert.deepEqual(q.events.map((e) => e.id), [4]);
  } finally { await w.dispose(); }
});

test('push: in order, signed, retried after failures, stopped by a refusal until resumed', async () => {
  const secret = newSecret();
  // Fails twice with 503, then accepts everything; later refuses one batch with 400.
  let refuse = false;
  const rx = await startReceiver(secret, (events, n) => (n < 2 ? 503 : refuse ? 400 : 200));
  const w = await startWorker({ bindings: { ...SECRETS, SYNC_ENDPOINT: rx.url, SYNC_SECRET: secret, PUSH_BATCH: '2', PUSH_BACKOFF_MS: '100' } });
  try {
    for (let i = 0; i < 5; i++)
      await req(w.url + '/hooks/generic/push', { body: JSON.stringify({ id: `p${i}` }), headers: { ...J, ...hookH } });
    await until('all five delivered', () => rx.batches.filter((b) => b.status === 200).flatMap((b) => b.events).length >= 5);
    assert.ok(rx.batches.every((b) => b.valid), 'every push is correctly signed');
    assert.equal(rx.batches[0].status, 503);
    assert.equal(rx.batches[1].status, 503);
    const delivered = rx.batches.filter((b) => b.status === 200).flatMap((b) => b.events.map((e) => e.data.id));
    assert.deepEqual(delivered, ['p0', 'p1', 'p2', 'p3', 'p4'], 'in order, none skipped, none twice');
    assert.ok(rx.batches.every((b) => /^batch-\d+-\d+$/.test(b.id)), 'webhook-id names the batch');
    let st = (await req(w.url + '/v1/status', { method: 'GET', headers: pullH })).json;
    assert.equal(st.push.backlog, 0);
    assert.ok(st.push.lastSuccess);

    refuse = true;
    await req(w.url + '/hooks/generic/push', { body: JSON.stringify({ id: 'p5' }), headers: { ...J, ...hookH } });
    st = await until('the refusal to show', async () => {
      const s = (await req(w.url + '/v1/status', { method: 'GET', headers: pullH })).json;
      return s.push.failed && s;
    });
    assert.equal(st.push.failed.status, 400);
    assert.equal(st.push.backlog, 1);
    const tries = rx.batches.length;
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(rx.batches.length, tries, 'not retried forever');
    refuse = false;
    assert.equal((await req(w.url + '/v1/push/retry', { headers: pullH })).status, 200);
    await until('p5 delivered after the retry', () => rx.batches.some((b) => b.status === 200 && b.events.some((e) => e.data.id === 'p5')));
  } finally { await w.dispose(); await rx.close(); }
});

test('push: a stale timestamp (clock skew) is retried, not a refusal', async () => {
  const secret = newSecret();
  const rx = await startReceiver(secret, (events, n) => (n < 2 ? [401, 'stale_timestamp'] : 200));
  const w = await startWorker({ bindings: { ...SECRETS, SYNC_ENDPOINT: rx.url, SYNC_SECRET: secret, PUSH_BACKOFF_MS: '100' } });
  try {
    await req(w.url + '/hooks/generic/skew', { body: '{"id":"s1"}', headers: { ...J, ...hookH } });
    await until('delivered after two stale answers', () => rx.batches.some((b) => b.status === 200));
    assert.deepEqual(rx.batches.map((b) => b.status), [401, 401, 200]);
    const st = (await req(w.url + '/v1/status', { method: 'GET', headers: pullH })).json;
    assert.equal(st.push.failed, null);
    assert.equal(st.push.backlog, 0);
  } finally { await w.dispose(); await rx.close(); }
});

test('optional queue: each new event once, as its exact JSON text, in calls within Cloudflare\'s limits', async () => {
  const w = await startWorker({ bindings: SECRETS, consumer: true });
  try {
    const r = await req(w.url + '/hooks/notifications', { body: fixture('ddos-l7.json'), headers: notifyH });
    assert.equal(r.json.accepted, 1);
    const again = await req(w.url + '/hooks/notifications', { body: fixture('ddos-l7.json'), headers: notifyH });
    assert.equal(again.json.duplicates, 1);
    // A Logpush batch of 250 records: more than one sendBatch call may take
    // (100 messages); one record with a 19-digit unix-nano timestamp; one
    // record over a message's 128 KB, which the queue cannot take.
    const lines = Array.from({ length: 250 }, (_, i) => JSON.stringify({ RayID: `q${i}`, ZoneName: 'example.com' }));
    lines[7] = '{"RayID":"q7","EdgeStartTimestamp":1763632801123456789}';
    lines[9] = JSON.stringify({ RayID: 'q9', pad: 'x'.repeat(140000) });
    const lp = await req(w.url + '/hooks/logpush/http_requests', { body: gzipSync(lines.join('\n')), headers: hookH });
    assert.equal(lp.status, 200, lp.text);
    assert.equal(lp.json.accepted, 250);
    const kv = await w.mf.getKVNamespace('SEEN', 'consumer');
    const keys = await until('249 messages consumed', async () => {
      const k = (await kv.list()).keys;
      return k.length >= 250 && k;
    });
    const seen = await Promise.all(keys.map(async (k) => JSON.parse(await kv.get(k.name))));
    assert.ok(seen.every((m) => m.type === 'string'), 'each body is the event JSON text');
    const ids = seen.map((m) => JSON.parse(m.body).id);
    assert.equal(new Set(ids).size, 250, 'the notification and 249 records, each once');
    const rays = seen.map((m) => m.body).filter((b) => b.includes('"com.cloudflare.logpush.http_requests"'));
    assert.equal(rays.length, 249);
    assert.ok(!rays.some((b) => b.includes('"q9"')), 'the oversized record is left out');
    assert.ok(rays.some((b) => b.includes('"EdgeStartTimestamp":1763632801123456789')), 'digit for digit');
    const st = (await req(w.url + '/v1/status', { method: 'GET', headers: pullH })).json;
    assert.equal(st.queue.enabled, true);
    assert.equal(st.queue.tooLarge, 1);
    assert.equal(st.queue.backlog, 0);
    assert.equal(st.queue.cursor, 251);
    assert.equal(st.queue.lastError, null);
    assert.equal(st.events, 251, 'the oversized record is still in the log');
  } finally { await w.dispose(); }
});

test('queue down: events are acknowledged once stored, and sent in order when the Queue is back; nothing lost, the oversized counted once', async () => {
  let down = false;
  const w = await startWorker({ bindings: { ...SECRETS, PUSH_BACKOFF_MS: '200', PUSH_MAX_BACKOFF_MS: '400' }, consumer: true, queueDown: () => down });
  const kv = await w.mf.getKVNamespace('SEEN', 'consumer');
  const seenIds = async () => {
    const keys = (await kv.list()).keys;
    return Promise.all(keys.map(async (k) => JSON.parse(JSON.parse(await kv.get(k.name)).body).id));
  };
  const status = async () => (await req(w.url + '/v1/status', { method: 'GET', headers: pullH })).json;
  try {
    assert.equal((await req(w.url + '/hooks/generic/q', { body: '{"id":"before"}', headers: { ...J, ...hookH } })).status, 200);
    await until('the first event in the queue', async () => (await seenIds()).length === 1);
    down = true;
    for (let i = 0; i < 5; i++) {
      const r = await req(w.url + '/hooks/generic/q', { body: JSON.stringify({ id: `down-${i}` }), headers: { ...J, ...hookH } });
      assert.equal(r.status, 200, 'stored, so acknowledged, although the Queue is down');
      assert.equal(r.json.accepted, 1);
    }
    // One record too large for a message, while the Queue is down: counted
    // once, however often the batch around it is retried.
    const big = JSON.stringify({ RayID: 'big', pad: 'z'.repeat(140000) });
    assert.equal((await req(w.url + '/hooks/logpush/http_requests', { body: `{"RayID":"r1"}\n${big}\n{"RayID":"r2"}`, headers: hookH })).json.accepted, 3);
    let st = await until('retries to show', async () => { const s = await status(); return s.queue.attempts >= 2 && s; });
    assert.equal(st.queue.backlog, 8);
    assert.match(st.queue.lastError.detail, /queue unavailable/);
    assert.ok(st.queue.nextAttempt, 'the next attempt is shown');
    assert.equal((await seenIds()).length, 1, 'nothing reached the queue while it was down');
    assert.equal(st.events, 9, 'all stored');

    down = false;
    await until('the backlog sent', async () => (await status()).queue.backlog === 0, 10000);
    const ids = await until('all in the queue', async () => { const x = await seenIds(); return x.length >= 8 && x; });
    const stored = JSON.parse((await req(`${w.url}/v1/events?after=0&limit=100`, { method: 'GET', headers: pullH })).text).events
      .map((e) => e.event).filter((e) => !e.data?.pad).map((e) => e.id);
    assert.deepEqual([...ids].sort(), [...stored].sort(), 'every event in the queue but the oversized one, none twice');
    st = await status();
    assert.equal(st.queue.tooLarge, 1, 'the oversized record counted once');
    assert.equal(st.queue.attempts, 0);
    assert.ok(st.queue.lastSuccess);
  } finally { await w.dispose(); }
});

test('push backoff: a receiver\'s Retry-After holds the next attempt, however many events arrive meanwhile', async () => {
  const secret = newSecret();
  let open = false;
  const rx = await startReceiver(secret, () => (open ? 200 : [503, 'busy', { 'retry-after': '3' }]));
  const w = await startWorker({ bindings: { ...SECRETS, SYNC_ENDPOINT: rx.url, SYNC_SECRET: secret, PUSH_BACKOFF_MS: '50' } });
  try {
    await req(w.url + '/hooks/generic/ra', { body: '{"id":"ra-0"}', headers: { ...J, ...hookH } });
    await until('the first attempt', () => rx.batches.length === 1);
    // New events right after a refused attempt do not bring the next one forward.
    for (let i = 1; i <= 10; i++)
      await req(w.url + '/hooks/generic/ra', { body: JSON.stringify({ id: `ra-${i}` }), headers: { ...J, ...hookH } });
    const st = (await req(w.url + '/v1/status', { method: 'GET', headers: pullH })).json;
    assert.ok(Date.parse(st.push.nextAttempt) - Date.parse(st.push.lastError.at) >= 3000, JSON.stringify(st.push));
    open = true;
    await until('all delivered', () => rx.batches.filter((b) => b.status === 200).flatMap((b) => b.events).length === 11, 10000);
    assert.ok(rx.batches[1].at - rx.batches[0].at >= 3000, 'no attempt before Retry-After has passed');
    assert.deepEqual(rx.batches.filter((b) => b.status === 200).flatMap((b) => b.events.map((e) => e.data.id)),
      Array.from({ length: 11 }, (_, i) => `ra-${i}`));
  } finally { await w.dispose(); await rx.close(); }
});

test('push: batches under PUSH_MAX_BYTES, in order; big integers keep their digits in push, pull and SSE', async () => {
  const secret = newSecret();
  const rx = await startReceiver(secret);
  const w = await startWorker({ bindings: { ...SECRETS, SYNC_ENDPOINT: rx.url, SYNC_SECRET: secret, PUSH_MAX_BYTES: '4000', PUSH_BACKOFF_MS: '100' } });
  try {
    // Eight records of ~1.3 KB in one Logpush batch: stored at once, pushed
    // in batches of at most 4,000 bytes.
    const pad = 'y'.repeat(1200);
    const lines = Array.from({ length: 8 }, (_, i) => `{"id":"b${i}","nanos":176363280112345678${i},"pad":"${pad}"}`);
    assert.equal((await req(w.url + '/hooks/logpush/big', { body: lines.join('\n'), headers: hookH })).json.accepted, 8);
    await until('all eight pushed', () => rx.batches.filter((b) => b.status === 200).flatMap((b) => b.events).length >= 8);
    const ok = rx.batches.filter((b) => b.status === 200);
    assert.ok(ok.length >= 3, `split into ${ok.length} batches`);
    for (const b of ok) assert.ok(Buffer.byteLength(b.raw) <= 4000, `a batch of ${Buffer.byteLength(b.raw)} bytes`);
    assert.deepEqual(ok.flatMap((b) => b.events.map((e) => e.data.id)), ['b0', 'b1', 'b2', 'b3', 'b4', 'b5', 'b6', 'b7']);
    assert.ok(ok.map((b) => b.raw).join('').includes('"nanos":1763632801123456787'), 'push: digit for digit');
    const page = await req(`${w.url}/v1/events?after=0&limit=10`, { method: 'GET', headers: pullH });
    assert.ok(page.text.includes('"nanos":1763632801123456787'), 'pull: digit for digit');
    assert.equal(page.json.events.length, 8);
    const sse = await readSSE(`${w.url}/v1/stream`, pullH, (ev) => ev.length >= 8);
    assert.ok(sse.events.some((e) => e.raw.includes('"nanos":1763632801123456787')), 'SSE: digit for digit');
  } finally { await w.dispose(); await rx.close(); }
});

test('without PULL_TOKEN the pull API is closed, whatever ALLOW_UNAUTHENTICATED opens', async () => {
  const w = await startWorker({ bindings: { ALLOW_UNAUTHENTICATED: 'notifications,logpush,generic' } });
  try {
    const r = await req(w.url + '/webhook/alert', { body: fixture('ddos-l7.json'), headers: J });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.accepted, 1);
    for (const [path, method] of [['/v1/events?after=0', 'GET'], ['/v1/stream', 'GET'], ['/v1/status', 'GET'], ['/v1/push/retry', 'POST']]) {
      const x = await req(w.url + path, { method, headers: { authorization: 'Bearer anything' } });
      assert.equal(x.status, 401, path);
      assert.match(x.json.error, /closed until PULL_TOKEN is set/);
    }
  } finally { await w.dispose(); }
});
