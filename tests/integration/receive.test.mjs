// synccf receive over loopback: every Cloudflare fixture yields exactly the
// expected events, duplicates stay duplicates, bad input is refused with its
// status and a counter, and the daemon keeps serving.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import {
  startDaemon, storedEvents, status, post, sign, newSecret, readVector, vectorRoute, VECTORS,
} from './lib.mjs';

const secret = newSecret();
let d;
before(async () => { d = await startDaemon({ env: { SYNCCF_PUSH_SECRET: secret } }); });
after(async () => { const r = await d.stop(); assert.equal(r.code, 0, 'SIGTERM exits 0'); });

// What the daemon stored, compared with a vector's expectation: the receive
// time is the daemon's own, and so is the time of events without one.
// An event first stored through another way in keeps that way's synccfvia.
function expectFrom(v, stored) {
  return v.expected.map((e, i) => {
    const x = { ...e, synccfvia: stored[i]?.synccfvia, synccfreceived: stored[i]?.synccfreceived };
    if (e.time === e.synccfreceived) x.time = stored[i]?.synccfreceived;
    return JSON.stringify(x);
  });
}

const vectors = readdirSync(VECTORS).filter((f) => f.endsWith('.json')).map(readVector);

test('every vector posted over HTTP is stored exactly as expected, once', async () => {
  const seen = new Set();
  for (const v of vectors) {
    const r = vectorRoute(v);
    if (!r) continue;
    // Vectors may share events (the same batch plain and gzipped).
    const fresh = v.expected.filter((e) => !seen.has(e.id)).length;
    const res = await post(d.url + r.path, v.bytes, { 'content-type': r.type });
    assert.equal(res.status, 200, `${v.input}: ${res.text}`);
    assert.equal(res.json.accepted, fresh, v.input);
    assert.equal(res.json.duplicates, v.expected.length - fresh, v.input);
    if (v.kind === 'logpush') assert.equal(res.json.rejected, v.rejected, v.input);
    const all = await storedEvents(d.state);
    const byId = new Map(all.map((e) => [e.id, e]));
    const stored = v.expected.map((e) => byId.get(e.id));
    v.expected.forEach((e, i) => { if (!seen.has(e.id)) assert.equal(stored[i]?.synccfvia, e.synccfvia, v.input); });
    assert.deepEqual(stored.map((e) => JSON.stringify(e)), expectFrom(v, stored), v.input);
    v.expected.forEach((e) => seen.add(e.id));

    const again = await post(d.url + r.path, v.bytes, { 'content-type': r.type });
    assert.equal(again.status, 200);
    assert.equal(again.json.accepted, 0, `${v.input} again`);
    assert.equal(again.json.duplicates, v.expected.length, `${v.input} again`);
    assert.equal((await storedEvents(d.state)).length, all.length, `${v.input} again: no new rows`);
  }
  assert.equal((await storedEvents(d.state)).length, seen.size);
});

test('a signed CloudEvents batch from the Worker is stored; a replay is a duplicate', async () => {
  const batch = [1, 2, 3].map((i) => ({
    specversion: '1.0', id: `worker-test-${i}`, source: '/cloudflare/pages', type: 'com.cloudflare.pages.deployment.success',
    subject: 'site', time: '2026-11-20T10:00:00Z', datacontenttype: 'application/json', synccfvia: 'worker',
    synccfreceived: '2026-11-20T10:00:01Z', data: { n: i },
  }));
  const body = JSON.stringify(batch);
  const headers = sign(secret, body);
  const res = await post(d.url + '/v1/events', body, headers);
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.json, { accepted: 3, duplicates: 0 });
  const replay = await post(d.url + '/v1/events', body, headers);
  assert.deepEqual(replay.json, { accepted: 0, duplicates: 3 });
  const stored = await storedEvents(d.state, '--type', 'com.cloudflare.pages.deployment.success');
  const ours = stored.filter((e) => e.id.startsWith('worker-test-'));
  assert.deepEqual(ours.map((e) => JSON.stringify(e)), batch.map((e) => JSON.stringify(e)), 'stored as sent');
});

test('bad input gets its status, a counter, and nothing stored', async () => {
  const before = (await storedEvents(d.state)).length;
  const s0 = await status(d.state);
  const ev = JSON.stringify([{ specversion: '1.0', id: 'never-stored', source: '/x', type: 't', time: '2026-11-20T10:00:00Z', data: {} }]);
  const otherSecret = newSecret();
  const bomb = gzipSync(Buffer.alloc(64 << 20, 0x20)); // 64 MiB of spaces in ~64 KiB
  const cases = [
    { name: 'bad signature', path: '/v1/events', body: ev, headers: sign(otherSecret, ev), status: 401, reason: 'bad_signature' },
    { name: 'stale timestamp', path: '/v1/events', body: ev, headers: sign(secret, ev, { ts: Math.floor(Date.now() / 1000) - 301 }), status: 401, reason: 'stale_timestamp' },
    { name: 'future timestamp', path: '/v1/events', body: ev, headers: sign(secret, ev, { ts: Math.floor(Date.now() / 1000) + 400 }), status: 401, reason: 'stale_timestamp' },
    { name: 'unsigned', path: '/v1/events', body: ev, headers: { 'content-type': 'application/cloudevents-batch+json' }, status: 401, reason: 'unauthorized' },
    { name: 'malformed JSON', path: '/hooks/notifications', body: '{"name":', headers: { 'content-type': 'application/json' }, status: 400, reason: 'malformed' },
    { name: 'signed but not CloudEvents', path: '/v1/events', body: '[{"id":"x"}]', headers: sign(secret, '[{"id":"x"}]'), status: 400, reason: 'malformed' },
    { name: 'not an object', path: '/hooks/generic/ci', body: '[1,2]', headers: { 'content-type': 'application/json' }, status: 400, reason: 'malformed' },
    { name: 'oversized', path: '/hooks/notifications', body: '{"a":"' + 'x'.repeat(2 << 20) + '"}', headers: { 'content-type': 'application/json' }, status: 413, reason: 'too_large' },
    { name: 'gzip bomb', path: '/hooks/logpush/http_requests', body: bomb, headers: {}, status: 413, reason: 'too_large' },
    { name: 'wrong content type', path: '/hooks/notifications', body: '{}', headers: { 'content-type': 'text/plain' }, status: 415, reason: 'unsupported_media_type' },
    { name: 'unknown route', path: '/hooks/unknown', body: '{}', headers: {}, status: 404, reason: 'not_found' },
    { name: 'bad dataset name', path: '/hooks/logpush/../etc', body: '{}', headers: {}, status: 404, reason: 'not_found' },
  ];
  const want = {};
  for (const c of cases) {
    const res = await post(d.url + c.path, c.body, c.headers);
    assert.equal(res.status, c.status, `${c.name}: ${res.text}`);
    assert.equal(res.json?.reason, c.reason, c.name);
    assert.equal(typeof res.json?.error, 'string', c.name);
    want[c.reason] = (want[c.reason] || 0) + 1;
  }
  const get = await fetch(d.url + '/v1/events');
  assert.equal(get.status, 405);
  want.method_not_allowed = 1;
  assert.equal((await fetch(d.url + '/healthz')).status, 200, 'still serving');
  assert.equal((await storedEvents(d.state)).length, before, 'nothing stored');
  // Counters reach the store within about a second.
  let s1;
  for (let i = 0; i < 40; i++) {
    s1 = await status(d.state);
    const done = Object.entries(want).every(([k, n]) => (s1.rejected[k] || 0) - (s0.rejected[k] || 0) === n);
    if (done) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  for (const [k, n] of Object.entries(want)) assert.equal((s1.rejected[k] || 0) - (s0.rejected[k] || 0), n, `counter ${k}`);
});

test('state.db is private to its owner', async () => {
  assert.equal(statSync(join(d.state, 'state.db')).mode & 0o777, 0o600);
  assert.equal(statSync(d.state).mode & 0o777, 0o700);
});

// A body's chunks of 4,096 records but the last are committed without
// waiting for the disk (lib/server.c, chunk_added): a record arriving after a
// full chunk moves to the next one, so the last chunk is never empty. At and
// around the boundaries every record is accepted once, with the lines the
// reader refuses after a full chunk counted as before.
test('Logpush bodies at the chunk boundaries are stored whole', async () => {
  const line = (tag, i) => JSON.stringify({ RayID: `${tag}-${i}`, EdgeStartTimestamp: 1763633000000000000 + i, ZoneName: 'example.com', EdgeResponseStatus: 200 });
  for (const [n, bad] of [[4095, 0], [4096, 0], [4097, 0], [8192, 0], [8193, 0], [4096, 3]]) {
    const tag = `edge-${n}-${bad}`;
    const lines = Array.from({ length: n }, (_, i) => line(tag, i));
    for (let k = 0; k < bad; k++) lines.push('{"not json');
    const res = await post(d.url + '/hooks/logpush/http_requests', gzipSync(lines.join('\n') + '\n'));
    assert.equal(res.status, 200, `${tag}: ${res.text}`);
    assert.deepEqual(res.json, { accepted: n, duplicates: 0, rejected: bad, filtered: 0 }, tag);
    const again = await post(d.url + '/hooks/logpush/http_requests', gzipSync(lines.slice(0, n).join('\n')));
    assert.deepEqual(again.json, { accepted: 0, duplicates: n, rejected: 0, filtered: 0 }, `${tag} again`);
  }
});

test('a large gzip Logpush batch is streamed in chunks and stored whole', async () => {
  const n = 30000;
  const lines = [];
  for (let i = 0; i < n; i++) lines.push(JSON.stringify({ RayID: `big-${i}`, EdgeStartTimestamp: 1763633000000000000 + i, ZoneName: 'example.com', EdgeResponseStatus: 200 + (i % 2) }));
  const body = gzipSync(lines.join('\n') + '\n');
  const res = await post(d.url + '/hooks/logpush/http_requests', body);
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.json, { accepted: n, duplicates: 0, rejected: 0, filtered: 0 });
  const again = await post(d.url + '/hooks/logpush/http_requests', body);
  assert.deepEqual(again.json, { accepted: 0, duplicates: n, rejected: 0, filtered: 0 });
});
