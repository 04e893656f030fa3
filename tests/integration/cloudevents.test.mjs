// CloudEvents from elsewhere on POST /v1/events, judged by the shared vector
// (tests/vectors/cloudevents.json) and by the cloudevents SDK; data_base64
// and integers past 64 bits kept as sent through the store, the CLI and the
// handlers; refusals name their route in the log.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, chmodSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { CloudEvent } from 'cloudevents';
import { Webhook } from 'standardwebhooks';
import {
  startDaemon, storedEvents, post, sign, newSecret, readVector, vectorRoute, cli, tempDir, VECTORS,
} from './lib.mjs';
import { until } from '../../worker/test/helpers.mjs';

const secret = newSecret();
const v = readVector('cloudevents.json');
const cases = JSON.parse(v.bytes);
const caseTexts = cases.map((c) => JSON.stringify(c));
// Each case's own text, big integers digit for digit, as the vector's input has it.
// (The input holds one case per line.)
const rawCases = readFileSync(join(VECTORS, v.input), 'utf8').split('\n').slice(1, -2).map((l) => l.replace(/,$/, ''));
// node's JSON.parse loses the digits of integers past 2^53: texts are
// compared with those integers quoted (both sides alike).
const quoteBig = (t) => t.replace(/(?<=[:\[,]\s*)(-?\d{16,})(?=\s*[,\]}])/g, '"$1"');
const exactParse = (t) => JSON.parse(quoteBig(t));

let d, dir;
before(async () => {
  dir = tempDir();
  const rec = join(dir, 'record.sh');
  // One file per run: runs of different subjects go at once.
  writeFileSync(rec, `#!/bin/sh\ncat > "$(mktemp ${dir}/handed/run.XXXXXX)"\n`);
  mkdirSync(join(dir, 'handed'));
  chmodSync(rec, 0o755);
  const cfg = join(dir, 'synccf.yaml');
  writeFileSync(cfg, `handlers:\n  - name: record\n    match: { type: "com.example.thing" }\n    exec: { argv: [${rec}] }\n`);
  d = await startDaemon({ env: { SYNCCF_PUSH_SECRET: secret }, args: ['--config', cfg] });
});
after(async () => { await d.stop(); });

test('the cloudevents SDK (strict) agrees with every verdict it can judge', () => {
  cases.forEach((c, i) => {
    const verdict = v.verdicts[i];
    let sdkError = null;
    try { new CloudEvent(c, true); } catch (e) { sdkError = e; }
    if (verdict.error === null) assert.equal(sdkError, null, `case ${i} (${caseTexts[i]}): the SDK refuses what synccf accepts: ${sdkError}`);
    else if (verdict.sdk_refuses) assert.ok(sdkError, `case ${i} (${caseTexts[i]}): the SDK accepts what synccf refuses (${verdict.error})`);
    else assert.equal(sdkError, null, `case ${i}: marked synccf's own rule, yet the SDK refuses it too: ${sdkError}`);
  });
});

test('POST /v1/events accepts and refuses each case as the vector says, naming the attribute', async () => {
  for (const [i, body] of rawCases.entries()) {
    const res = await post(d.url + '/v1/events', body, sign(secret, body));
    const want = v.verdicts[i].error;
    if (want === null) {
      assert.equal(res.status, 200, `case ${i}: ${res.text}`);
      assert.equal(res.json.accepted, 1, `case ${i}`);
    } else {
      assert.equal(res.status, 400, `case ${i} (${body}) is refused`);
      assert.deepEqual(res.json, { error: `event 0: ${want}`, reason: 'malformed' }, `case ${i}`);
    }
  }
  // One bad event refuses its whole batch.
  const batch = `[${rawCases[0].replace('ce-b64', 'ce-batch-ok')},${rawCases.at(-1)}]`;
  const res = await post(d.url + '/v1/events', batch, sign(secret, batch));
  assert.equal(res.status, 400);
  assert.match(res.json.error, /^event 1: /);
  assert.match(d.log, /msg="request rejected" .*route=\/v1\/events/);
});

test('accepted events are stored byte for byte (data_base64, big integers), and handed to handlers so', async () => {
  const lines = (await cli(d.state, 'events', 'list', '--json', '--limit', '1000')).split('\n').filter(Boolean);
  await storedEvents(d.state); // every stored event passes the SDK
  const expected = exactParse(readFileSync(join(VECTORS, 'cloudevents.json'), 'utf8')).expected;
  assert.equal(lines.length, expected.length);
  for (const e of expected) {
    const line = lines.find((l) => JSON.parse(l).id === e.id);
    assert.ok(line, `${e.id} stored`);
    // The receive time is the daemon's own when the event had none.
    const rcv = JSON.parse(line).synccfreceived;
    assert.equal(quoteBig(line), JSON.stringify({ ...e, synccfreceived: e.synccfreceived === v.received ? rcv : e.synccfreceived }));
  }
  assert.ok(lines.some((l) => l.includes('"data_base64":"AAECAwQ="') && !l.includes('"data":')));
  assert.ok(lines.some((l) => l.includes('"n":12345678901234567890,"m":-98765432109876543210')));
  const handed = await until('the handler runs', async () => {
    const got = readdirSync(join(dir, 'handed')).map((f) => readFileSync(join(dir, 'handed', f), 'utf8'));
    // A run's file exists before its command has written it: wait for all.
    return got.length === expected.length && lines.every((l) => got.includes(l)) && got;
  }, 15000);
  for (const l of lines) assert.ok(handed.includes(l), `handed to the handler as stored: ${l}`);
});

test('a generic hook with integers past 64 bits is stored digit for digit (shared vector)', async () => {
  const g = readVector('generic-bigint.json');
  const r = vectorRoute(g);
  const res = await post(d.url + r.path, g.bytes, { 'content-type': r.type });
  assert.equal(res.status, 200, res.text);
  const line = (await cli(d.state, 'events', 'list', '--json', '--type', 'dev.synccf.hook.bigint')).trim();
  const e = JSON.parse(line);
  const want = exactParse(readFileSync(join(VECTORS, 'generic-bigint.json'), 'utf8')).expected[0];
  assert.equal(quoteBig(line), JSON.stringify({ ...want, synccfreceived: e.synccfreceived }));
  assert.ok(line.endsWith(`"data":${g.bytes.toString().trim()}}`), 'data as sent, digit for digit');
  // Pushed on as it is stored (the Worker's push of the same event): the same bytes, a duplicate.
  const body = `[${line}]`;
  const again = await post(d.url + '/v1/events', body, sign(secret, body));
  assert.deepEqual(again.json, { accepted: 0, duplicates: 1 });
});

test('synccf verifies what the standardwebhooks library signs, and refuses what it does not', async () => {
  const body = JSON.stringify([{ specversion: '1.0', id: 'ce-swh', source: '/x', type: 'com.example.other', time: '2026-11-20T09:00:00Z', data: {} }]);
  const wh = new Webhook(secret);
  const id = 'msg_swh';
  const now = new Date();
  const headers = { 'content-type': 'application/cloudevents-batch+json', 'webhook-id': id, 'webhook-timestamp': String(Math.floor(now / 1000)) };
  const bad = await post(d.url + '/v1/events', body, { ...headers, 'webhook-signature': wh.sign(id, now, body + ' ') });
  assert.equal(bad.status, 401);
  const ok = await post(d.url + '/v1/events', body, { ...headers, 'webhook-signature': wh.sign(id, now, body) });
  assert.equal(ok.status, 200, ok.text);
  // And the helper's sign() is what the library verifies.
  const h = sign(secret, body);
  assert.doesNotThrow(() => wh.verify(body, h));
});

test('refusals name their route in the log', async () => {
  const J = { 'content-type': 'application/json' };
  await post(d.url + '/hooks/generic/named', '{bad', J);
  await post(d.url + '/hooks/logpush/http_requests', 'x', { authorization: 'Bearer nope', ...J });
  await post(d.url + '/hooks/notifications', '[]', J);
  await post(d.url + '/nowhere', '{}', J);
  assert.match(d.log, /msg="request rejected" .*route=\/hooks\/generic\/named/);
  assert.match(d.log, /msg="request rejected" .*route=\/hooks\/notifications/);
  assert.match(d.log, /msg="request rejected" .*reason=not_found .*route=unknown/);
  assert.doesNotMatch(d.log, /route=(\s|$)/m, 'no empty route=');
});
