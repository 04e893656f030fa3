// Retention on the real daemon: rules by type prune what they name and keep
// the rest; a late retry of a pruned event is a duplicate and runs no
// handler again; status and /metrics show the retention in force and what it
// removed; a SIGKILL while pruning loses nothing acknowledged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { startDaemon, post, tempDir, cli, status, newSecret, sign } from './lib.mjs';
import { until } from '../../worker/test/helpers.mjs';

const sql = (state, q) => {
  const out = execFileSync('sqlite3', ['-readonly', '-json', join(state, 'state.db'), q], { encoding: 'utf8', maxBuffer: 256 << 20 });
  return out.trim() ? JSON.parse(out) : [];
};
// The store's key for an id in ids (store_id_hash): SHA-256's first 8 bytes.
const idHash = (id) => createHash('sha256').update(id).digest().readBigInt64BE(0).toString();

const event = (id, type, received) => ({
  specversion: '1.0', id, source: '/test/retention', type, time: '2026-11-20T10:00:00Z',
  ...(received ? { synccfreceived: received } : {}), data: { n: id },
});

test('rules by type, dedupe after pruning, status and metrics', async () => {
  const dir = tempDir();
  const ran = join(dir, 'ran.log');
  const cfg = join(dir, 'synccf.yaml');
  writeFileSync(cfg, `retention:
  rules:
    - type: "com.example.logs.*"
      max_age: 1s
    - type: "com.example.deploy"
      max_age: 365d
handlers:
  - name: note
    match: { type: "com.example.*" }
    exec: { argv: [/bin/sh, -c, 'cat >/dev/null; echo "$SYNCCF_EVENT_ID" >> ${ran}'] }
`);
  const secret = newSecret();
  const d = await startDaemon({ args: ['--config', cfg], env: { SYNCCF_PUSH_SECRET: secret } });
  try {
    const logs = Array.from({ length: 50 }, (_, i) => event(`log-${i}`, 'com.example.logs.http'));
    const deploys = Array.from({ length: 3 }, (_, i) => event(`dep-${i}`, 'com.example.deploy'));
    for (const batch of [logs, deploys]) {
      const body = JSON.stringify(batch);
      const r = await post(d.url + '/v1/events', body, sign(secret, body));
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.accepted, batch.length);
    }
    // Every handler run finishes, then the logs (and only they) are pruned.
    const st = await until('the logs pruned', async () => {
      const s = await status(d.state);
      return s.retention.pruned['rule:com.example.logs.*'] === 50 && s;
    }, 20000);
    assert.equal(st.events.total, 3);
    assert.deepEqual(st.retention.config.rules.map((r) => [r.type, r.max_age_ms]),
      [['com.example.logs.*', 1000], ['com.example.deploy', 365 * 86400000]]);
    assert.equal(st.retention.config.dedupe_window_ms, 30 * 86400000);
    assert.ok(st.retention.file_bytes > 0);
    const ranBefore = readFileSync(ran, 'utf8').split('\n').filter(Boolean).sort();
    assert.equal(ranBefore.length, 53);

    // A late retry of pruned events: duplicates, no handler runs again.
    const body = JSON.stringify(logs.slice(0, 10));
    const r = await post(d.url + '/v1/events', body, sign(secret, body));
    assert.equal(r.status, 200);
    assert.equal(r.json.accepted, 0);
    assert.equal(r.json.duplicates, 10);
    assert.equal((await status(d.state)).events.total, 3);
    assert.equal(sql(d.state, 'SELECT count(*) AS n FROM runs')[0].n, 3);

    const text = await cli(d.state, 'status');
    assert.match(text, /retention\s+com\.example\.logs\.\*: max_age 1s; com\.example\.deploy: max_age 365d; dedupe window 30d/);
    assert.match(text, /rule:com\.example\.logs\.\*\s+50/);
    const metrics = await (await fetch(d.url + '/metrics')).text();
    assert.match(metrics, /^synccf_pruned_total\{limit="rule:com\.example\.logs\.\*"\} 50$/m);
    assert.match(metrics, /^synccf_store_bytes \d+$/m);
    assert.match(metrics, /^synccf_retention_limit\{rule="com\.example\.logs\.\*",limit="max_age_ms"\} 1000$/m);
    assert.equal(readFileSync(ran, 'utf8').split('\n').filter(Boolean).length, 53);
  } finally {
    await d.stop();
  }
});

test('bad retention settings are refused with the line and key', async () => {
  const dir = tempDir();
  const cfg = join(dir, 'synccf.yaml');
  writeFileSync(cfg, 'retention:\n  rules:\n    - type: "x.*"\n      max_age: 2 days\n');
  await assert.rejects(cli(dir, '--config', cfg, 'config', 'check'), /synccf\.yaml:4: key 'retention': rules: key 'max_age': expected a duration/);
});

// SIGKILLed again and again while the store's count limit prunes: every
// acknowledged event is stored, or pruned (its id kept in ids, marked), and
// never both nor neither; the limit holds once it has caught up.
test('SIGKILL during pruning loses nothing', async () => {
  const state = tempDir();
  const dir = tempDir();
  const cfg = join(dir, 'synccf.yaml');
  writeFileSync(cfg, 'retention:\n  max_events: 500\n');
  const secret = newSecret();
  const acked = [];
  let n = 0;
  for (let cycle = 0; cycle < 6; cycle++) {
    const d = await startDaemon({ state, args: ['--config', cfg], env: { SYNCCF_PUSH_SECRET: secret } });
    const posts = [];
    for (let k = 0; k < 8; k++) {
      const batch = Array.from({ length: 100 }, () => event(`k-${n++}`, 'com.example.bulk'));
      const body = JSON.stringify(batch);
      posts.push(post(d.url + '/v1/events', body, sign(secret, body)).then((r) => {
        if (r.status === 200) acked.push(...batch.map((e) => e.id));
      }).catch(() => {}));
    }
    await Promise.race([Promise.all(posts), new Promise((r) => setTimeout(r, 20 + cycle * 15))]);
    await d.stop('SIGKILL');
    await Promise.all(posts);
  }
  const d = await startDaemon({ state, args: ['--config', cfg] });
  try {
    await until('the limit caught up', async () => (await status(state)).events.total <= 500, 20000);
  } finally {
    await d.stop();
  }
  assert.ok(acked.length > 0);
  // A stored event's key is in ids, or, past the merged mark, in the
  // daemon's memory (read back from event_rows at start: lib/store.c).
  const stored = new Map(sql(state, 'SELECT id, seq FROM events').map((r) => [r.id, r.seq]));
  const marker = Number(sql(state, "SELECT value FROM meta WHERE key = 'ids.merged'")[0].value);
  const pruned = new Set(sql(state, 'SELECT CAST(h AS TEXT) AS h FROM ids WHERE pruned IS NOT NULL').map((r) => r.h));
  const live = new Set(sql(state, 'SELECT CAST(h AS TEXT) AS h FROM ids WHERE pruned IS NULL').map((r) => r.h));
  let lost = 0, both = 0;
  for (const id of acked) {
    const h = idHash(id);
    if (stored.has(id)) {
      if (pruned.has(h)) both++;
      if (!live.has(h) && stored.get(id) <= marker) lost++;
    } else if (!pruned.has(h)) lost++;
  }
  assert.equal(lost, 0);
  assert.equal(both, 0);
  // And every acknowledged event, sent again, is a duplicate.
  const again = await startDaemon({ state, args: ['--config', cfg], env: { SYNCCF_PUSH_SECRET: secret } });
  try {
    let accepted = 0, duplicates = 0;
    for (let i = 0; i < acked.length; i += 100) {
      const body = JSON.stringify(acked.slice(i, i + 100).map((id) => event(id, 'com.example.bulk')));
      const r = await post(again.url + '/v1/events', body, sign(secret, body));
      assert.equal(r.status, 200);
      const j = r.json;
      accepted += j.accepted;
      duplicates += j.duplicates;
    }
    assert.equal(accepted, 0);
    assert.equal(duplicates, acked.length);
  } finally {
    await again.stop();
  }
  const s = sql(state, "SELECT value FROM counters WHERE name = 'pruned.max_events'")[0]?.value ?? 0;
  assert.equal(s + stored.size >= acked.length, true);
  assert.ok(existsSync(join(state, 'state.db')));
});
