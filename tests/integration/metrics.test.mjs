// /metrics after a scripted sequence: N accepted, M duplicates, K rejected,
// a failing handler -- exact counter values, in a strictly parsed
// Prometheus text exposition.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startDaemon, post, tempDir, promtoolCheck, sign, newSecret } from './lib.mjs';
import { until } from '../../worker/test/helpers.mjs';

// Prometheus text format 0.0.4: HELP/TYPE lines, then samples of known
// families; label values quoted and escaped; values are floats.
function parse(text) {
  const types = {}, samples = [];
  const sampleRe = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*)\})? (-?(?:[0-9.]+(?:e[+-]?[0-9]+)?|\+Inf|-Inf|NaN))$/;
  for (const line of text.split('\n')) {
    if (!line) continue;
    let m;
    if ((m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+$/.exec(line))) continue;
    if ((m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line))) { types[m[1]] = m[2]; continue; }
    m = sampleRe.exec(line);
    assert.ok(m, `not a valid sample line: ${line}`);
    const name = m[1];
    const family = Object.keys(types).find((t) => name === t || (types[t] === 'histogram' && [`${t}_bucket`, `${t}_sum`, `${t}_count`].includes(name)));
    assert.ok(family, `sample before its TYPE: ${line}`);
    const labels = {};
    for (const l of (m[3] || '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    samples.push({ name, labels, value: Number(m[4]) });
  }
  return { types, samples };
}
const value = (p, name, labels = {}) => p.samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

test('exact counters after a scripted sequence', async () => {
  const dir = tempDir();
  const cfg = join(dir, 'synccf.yaml');
  writeFileSync(cfg, 'dispatch: { max_attempts: 2, backoff: 100ms }\nhandlers:\n  - name: broken\n    match: { type: dev.synccf.hook.fail }\n    exec: { argv: [/bin/false] }\n');
  const d = await startDaemon({ args: ['--config', cfg] });
  try {
    const J = { 'content-type': 'application/json' };
    for (let i = 0; i < 5; i++) assert.equal((await post(d.url + '/hooks/generic/ok', JSON.stringify({ id: `n${i}` }), J)).status, 200); // N = 5
    for (let i = 0; i < 3; i++) await post(d.url + '/hooks/generic/ok', JSON.stringify({ id: `n${i}` }), J); // M = 3 duplicates
    await post(d.url + '/hooks/generic/ok', '{bad', J); // K: 1 malformed
    await post(d.url + '/hooks/generic/ok', '{}', { 'content-type': 'text/plain' }); // 1 unsupported media type
    await post(d.url + '/nowhere', '{}', J); // 1 not found
    await post(d.url + '/hooks/generic/fail', '{"id":"f"}', J); // a handler that fails twice, then gives up

    const p = await until('the counters', async () => {
      const r = await fetch(d.url + '/metrics');
      assert.equal(r.status, 200);
      assert.match(r.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
      const parsed = parse(await r.text());
      return value(parsed, 'synccf_handler_runs_total', { handler: 'broken', outcome: 'gave_up' }) === 1
        && value(parsed, 'synccf_rejections_total', { reason: 'not_found' }) === 1 && parsed;
    }, 15000);
    assert.equal(value(p, 'synccf_events_stored_total', { via: 'tunnel', source: '/synccf/hooks/ok' }), 5);
    assert.equal(value(p, 'synccf_events_stored_total', { via: 'tunnel', source: '/synccf/hooks/fail' }), 1);
    assert.equal(value(p, 'synccf_duplicates_total', { via: 'tunnel' }), 3);
    assert.equal(value(p, 'synccf_rejections_total', { reason: 'malformed' }), 1);
    assert.equal(value(p, 'synccf_rejections_total', { reason: 'unsupported_media_type' }), 1);
    assert.equal(value(p, 'synccf_handler_runs_total', { handler: 'broken', outcome: 'failed' }), 1);
    assert.equal(value(p, 'synccf_handler_runs_total', { handler: 'broken', outcome: 'gave_up' }), 1);
    assert.equal(value(p, 'synccf_outbox_pending'), 0);
    assert.equal(value(p, 'synccf_outbox_gave_up'), 1);
    assert.equal(p.types.synccf_commit_duration_seconds, 'histogram');
    assert.ok(value(p, 'synccf_commit_duration_seconds_count') >= 6);
    assert.equal(value(p, 'synccf_handler_duration_seconds_count', { handler: 'broken' }), 2);
    const buckets = p.samples.filter((s) => s.name === 'synccf_commit_duration_seconds_bucket').map((s) => s.value);
    assert.deepEqual(buckets, [...buckets].sort((a, b) => a - b), 'cumulative buckets');
    assert.ok(value(p, 'synccf_last_event_timestamp_seconds') > Date.now() / 1000 - 60);
    assert.equal(value(p, 'synccf_build_info', { version: '0.1.0' }), 1);
    const pc = await promtoolCheck(await (await fetch(d.url + '/metrics')).text());
    assert.equal(pc.code, 0, `promtool check metrics:\n${pc.out}`);
  } finally { await d.stop(); }
});

test('labels fed by input are bounded: past metrics.max_series, sources are counted under other, and no series is ever taken over', async () => {
  const dir = tempDir();
  const cfg = join(dir, 'synccf.yaml');
  writeFileSync(cfg, 'metrics: { max_series: 5 }\n');
  const secret = newSecret();
  const d = await startDaemon({ args: ['--config', cfg], env: { SYNCCF_PUSH_SECRET: secret } });
  try {
    const J = { 'content-type': 'application/json' };
    for (let i = 0; i < 12; i++) assert.equal((await post(`${d.url}/hooks/generic/h${i}`, JSON.stringify({ id: `x${i}` }), J)).status, 200);
    // Pushed events with many sources and types (more in one batch than a
    // commit tallies at once), and one whose source is "other".
    const batch = JSON.stringify([...Array.from({ length: 40 }, (_, i) => ({
      specversion: '1.0', id: `m${i}`, source: `/many/${i}`, type: `com.example.t${i}`, time: '2026-11-20T09:00:00Z', data: {},
    })), { specversion: '1.0', id: 'o', source: 'other', type: 'x', time: '2026-11-20T09:00:00Z' }]);
    assert.equal((await post(d.url + '/v1/events', batch, sign(secret, batch))).status, 200);
    // An undocumented synccfvia never reaches a label: it is refused.
    const odd = JSON.stringify([{ specversion: '1.0', id: 'v', source: '/v', type: 'x', time: '2026-11-20T09:00:00Z', synccfvia: 'x'.repeat(100) }]);
    assert.equal((await post(d.url + '/v1/events', odd, sign(secret, odd))).status, 400);

    const p = await until('the counters', async () => {
      const parsed = parse(await (await fetch(d.url + '/metrics')).text());
      const stored = parsed.samples.filter((x) => x.name === 'synccf_events_stored_total');
      return stored.reduce((n, x) => n + x.value, 0) === 53 && parsed;
    }, 15000);
    const stored = p.samples.filter((x) => x.name === 'synccf_events_stored_total');
    const own = stored.filter((x) => x.labels.source !== 'other');
    assert.deepEqual(own.map((x) => `${x.labels.via}|${x.labels.source}`),
      ['h0', 'h1', 'h2', 'h3', 'h4'].map((h) => `tunnel|/synccf/hooks/${h}`), 'the first max_series sources seen');
    assert.equal(value(p, 'synccf_events_stored_total', { via: 'tunnel', source: 'other' }), 7);
    assert.equal(value(p, 'synccf_events_stored_total', { via: 'worker', source: 'other' }), 41);
    assert.deepEqual(stored.filter((x) => x.labels.source === 'other').map((x) => x.labels.via).sort(), ['tunnel', 'worker']);
    assert.ok(stored.every((x) => ['worker', 'tunnel', 'queue', 'poll', 'other'].includes(x.labels.via)));
    assert.equal(new Set(stored.map((x) => `${x.labels.via}|${x.labels.source}`)).size, stored.length, 'no series twice');
    const pc = await promtoolCheck(await (await fetch(d.url + '/metrics')).text());
    assert.equal(pc.code, 0, `promtool check metrics:\n${pc.out}`);

    // A new source whose name sorts first takes no series' place: every
    // counter only grows (a drop would read as a counter reset).
    assert.equal((await post(`${d.url}/hooks/generic/a0`, JSON.stringify({ id: 'late' }), J)).status, 200);
    const q = await until('the late event counted', async () => {
      const parsed = parse(await (await fetch(d.url + '/metrics')).text());
      return value(parsed, 'synccf_events_stored_total', { via: 'tunnel', source: 'other' }) === 8 && parsed;
    }, 15000);
    for (const x of stored) assert.equal(value(q, 'synccf_events_stored_total', x.labels), x.value + (x.labels.via === 'tunnel' && x.labels.source === 'other' ? 1 : 0), JSON.stringify(x.labels));

    // Restarted on the same store, the daemon reads which sources were
    // admitted: an admitted one keeps its own series, a new one is "other".
    await d.stop();
    const d2 = await startDaemon({ state: d.state, args: ['--config', cfg], env: { SYNCCF_PUSH_SECRET: secret } });
    try {
      for (const h of ['h2', 'b0']) assert.equal((await post(`${d2.url}/hooks/generic/${h}`, JSON.stringify({ id: `again-${h}` }), J)).status, 200);
      const r = await until('both counted after the restart', async () => {
        const parsed = parse(await (await fetch(d2.url + '/metrics')).text());
        return value(parsed, 'synccf_events_stored_total', { via: 'tunnel', source: 'other' }) === 9 && parsed;
      }, 15000);
      assert.equal(value(r, 'synccf_events_stored_total', { via: 'tunnel', source: '/synccf/hooks/h2' }), 2);
      assert.equal(r.samples.filter((x) => x.name === 'synccf_events_stored_total' && x.labels.source !== 'other').length, 5);
    } finally { await d2.stop(); }
  } finally { await d.stop(); }
});

test('events tail follows new events and handler outcomes', async () => {
  const { spawn } = await import('node:child_process');
  const { BIN } = await import('./lib.mjs');
  const dir = tempDir();
  const cfg = join(dir, 'synccf.yaml');
  writeFileSync(cfg, 'handlers:\n  - name: ok\n    match: { type: dev.synccf.hook.t }\n    exec: { argv: [/bin/true] }\n');
  const d = await startDaemon({ args: ['--config', cfg] });
  const tail = spawn(BIN, ['--state', d.state, 'events', 'tail', '--json'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  tail.stdout.on('data', (b) => { out += b; });
  try {
    await new Promise((r) => setTimeout(r, 500));
    await post(d.url + '/hooks/generic/t', '{"id":"tail-1"}', { 'content-type': 'application/json' });
    const lines = await until('an event and its run', () => {
      const l = out.trim().split('\n').filter(Boolean).map((x) => JSON.parse(x));
      return l.some((x) => x.kind === 'event') && l.some((x) => x.kind === 'run' && x.state === 'ok') && l;
    });
    const ev = lines.find((x) => x.kind === 'event');
    assert.equal(ev.event.data.id, 'tail-1');
    assert.equal(lines.find((x) => x.kind === 'run').handler, 'ok');
  } finally { tail.kill('SIGINT'); await d.stop(); }
});
