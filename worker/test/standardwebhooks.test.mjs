// The Worker's push checked by an outside oracle: the Standard Webhooks
// reference library (`standardwebhooks`, pinned in tests/package.json)
// verifies every batch the Worker really sends to a local receiver.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { startWorker, req, newSecret, until, INGEST_SECRETS, hookHeaders, ROOT } from './helpers.mjs';

function oracle() {
  try {
    return createRequire(join(ROOT, 'tests', 'package.json'))('standardwebhooks');
  } catch (e) {
    throw new Error(`the standardwebhooks package is missing: run (cd tests && npm ci) first (${e.message})`);
  }
}
const { Webhook } = oracle();

// A receiver that accepts only what the reference library verifies.
async function verifyingReceiver(secret) {
  const wh = new Webhook(secret);
  const got = [];
  const server = createServer((rq, rs) => {
    const chunks = [];
    rq.on('data', (c) => chunks.push(c));
    rq.on('end', () => {
      const raw = Buffer.concat(chunks).toString();
      const headers = { 'webhook-id': rq.headers['webhook-id'], 'webhook-timestamp': rq.headers['webhook-timestamp'], 'webhook-signature': rq.headers['webhook-signature'] };
      let payload = null, error = null;
      try { payload = wh.verify(raw, headers); } catch (e) { error = e.message; }
      got.push({ path: rq.url, raw, headers, payload, error });
      rs.writeHead(payload ? 200 : 401, { 'content-type': 'application/json' });
      rs.end(JSON.stringify(payload ? { accepted: payload.length, duplicates: 0 } : { error, reason: 'bad_signature' }));
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}`, got, close: () => new Promise((r) => server.close(r)) };
}

test('standardwebhooks verifies every push the Worker sends; a changed byte or another secret does not verify', async () => {
  const secret = newSecret();
  const rx = await verifyingReceiver(secret);
  const w = await startWorker({ bindings: { ...INGEST_SECRETS, SYNC_ENDPOINT: rx.url, SYNC_SECRET: secret, PUSH_BATCH: '2', PUSH_BACKOFF_MS: '100' } });
  try {
    for (let i = 0; i < 5; i++) {
      const r = await req(w.url + '/hooks/generic/sw', { body: JSON.stringify({ id: `sw${i}`, note: 'ünïcödé ✓' }), headers: { 'content-type': 'application/json', ...hookHeaders } });
      assert.equal(r.status, 200, r.text);
    }
    await until('five events pushed', () => rx.got.filter((g) => g.payload).flatMap((g) => g.payload).length >= 5);
    assert.ok(rx.got.length >= 3, `${rx.got.length} batches of at most 2`);
    for (const g of rx.got) {
      assert.equal(g.error, null, `the reference library refused a push: ${g.error}`);
      assert.equal(g.path, '/v1/events');
      assert.match(g.headers['webhook-id'], /^batch-\d+-\d+$/);
    }
    assert.deepEqual(rx.got.flatMap((g) => g.payload.map((e) => e.data.id)), ['sw0', 'sw1', 'sw2', 'sw3', 'sw4'], 'in order, each once');
    assert.ok(rx.got.every((g) => g.payload.every((e) => e.data.note === 'ünïcödé ✓')), 'the signature covers the UTF-8 body');

    // The oracle is not lenient: the same push with one byte changed, or
    // checked with another secret, is refused.
    const one = rx.got[0];
    const flipped = one.raw.replace('sw0', 'sw9');
    assert.notEqual(flipped, one.raw);
    assert.throws(() => new Webhook(secret).verify(flipped, one.headers));
    assert.throws(() => new Webhook(newSecret()).verify(one.raw, one.headers));
  } finally { await w.dispose(); await rx.close(); }
});

test('the Worker verifies no Standard Webhooks signature on ingest: a request the library signs is no credential there', async () => {
  // Its ingest routes take Cloudflare's credentials (cf-webhook-auth, a
  // bearer token); a signed request without them is refused like any other.
  const secret = newSecret();
  const w = await startWorker({ bindings: { ...INGEST_SECRETS, PULL_TOKEN: 'p' } });
  try {
    const body = JSON.stringify({ id: 'signed' });
    const id = 'msg_1', ts = new Date();
    const signature = new Webhook(secret).sign(id, ts, body);
    const headers = { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': String(Math.floor(ts / 1000)), 'webhook-signature': signature };
    for (const path of ['/hooks/generic/signed', '/hooks/notifications', '/v1/events'])
      assert.ok([401, 405].includes((await req(w.url + path, { body, headers })).status), path);
    const st = await req(w.url + '/v1/status', { method: 'GET', headers: { authorization: 'Bearer p' } });
    assert.equal(st.json.events, 0);
  } finally { await w.dispose(); }
});
