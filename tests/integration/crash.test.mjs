// Durability: SIGKILL the daemon while clients stream events at it; after a
// restart every event any client saw acknowledged is in the store.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startDaemon, storedEvents, post, sign, newSecret, tempDir, cli, until } from './lib.mjs';

const secret = newSecret();

function event(id) {
  return {
    specversion: '1.0', id, source: '/crash-test', type: 'dev.synccf.test.crash', time: '2026-11-20T10:00:00Z',
    datacontenttype: 'application/json', data: { pad: 'x'.repeat(900) },
  };
}

async function sender(d, name, acked, stop) {
  for (let i = 0; !stop.done; i++) {
    const body = JSON.stringify([event(`${name}-${i}`)]);
    try {
      const res = await post(d.url + '/v1/events', body, sign(secret, body));
      if (res.status === 200 && res.json.accepted + res.json.duplicates === 1) acked.push(`${name}-${i}`);
    } catch { return; } // the daemon is gone
  }
}

test('every acknowledged event survives SIGKILL', async () => {
  const state = tempDir();
  const acked = [];
  for (let round = 0; round < 3; round++) {
    const d = await startDaemon({ state, env: { SYNCCF_PUSH_SECRET: secret } });
    const stop = { done: false };
    const senders = Array.from({ length: 16 }, (_, k) => sender(d, `r${round}c${k}`, acked, stop));
    await new Promise((r) => setTimeout(r, 700 + Math.random() * 600));
    d.child.kill('SIGKILL');
    const { signal } = await d.exited;
    stop.done = true;
    await Promise.all(senders);
    assert.equal(signal, 'SIGKILL');
  }
  assert.ok(acked.length > 100, `enough traffic to mean something (${acked.length} acknowledged)`);
  const stored = new Set((await storedEvents(state)).map((e) => e.id));
  const lost = acked.filter((id) => !stored.has(id));
  assert.deepEqual(lost, [], `${lost.length} of ${acked.length} acknowledged events lost`);
});

test('SIGTERM drains and exits 0; the store reopens cleanly', async () => {
  const state = tempDir();
  const d = await startDaemon({ state, env: { SYNCCF_PUSH_SECRET: secret } });
  const body = JSON.stringify([event('term-1')]);
  assert.equal((await post(d.url + '/v1/events', body, sign(secret, body))).status, 200);
  const { code } = await d.stop('SIGTERM');
  assert.equal(code, 0);
  assert.match(d.log, /msg=stopped/);
  const d2 = await startDaemon({ state, env: { SYNCCF_PUSH_SECRET: secret } });
  const again = await post(d2.url + '/v1/events', body, sign(secret, body));
  assert.deepEqual(again.json, { accepted: 0, duplicates: 1 });
  await d2.stop();
});

// A handler still running when SIGTERM comes finishes, and its outcome is
// recorded before the store closes (the dispatcher stops first).
test('SIGTERM while a handler runs: it finishes and its outcome is recorded', async () => {
  const state = tempDir();
  const dir = tempDir();
  const cfg = join(dir, 'synccf.yaml');
  const started = join(dir, 'started');
  const done = join(dir, 'done');
  writeFileSync(cfg, `handlers:
  - name: slow
    match: { type: dev.synccf.test.crash }
    exec: { argv: [/bin/sh, -c, 'cat >/dev/null; touch ${started}; sleep 1; touch ${done}'] }
`);
  const d = await startDaemon({ state, args: ['--config', cfg], env: { SYNCCF_PUSH_SECRET: secret } });
  const body = JSON.stringify([event('term-slow')]);
  assert.equal((await post(d.url + '/v1/events', body, sign(secret, body))).status, 200);
  await until('the handler started', async () => existsSync(started), 10000);
  const { code } = await d.stop('SIGTERM');
  assert.equal(code, 0, d.log);
  assert.ok(existsSync(done), 'the handler ran to its end');
  assert.doesNotMatch(d.log, /ERROR: AddressSanitizer|runtime error/);
  const shown = JSON.parse(await cli(state, 'events', 'show', 'term-slow', '--json'));
  assert.equal(shown.runs[0].state, 'ok');
  assert.equal(shown.runs[0].attempts, 1);
});
