// synccf pull against the Worker in workerd: catch-up, live events, several
// followers, a wrong token, and SIGKILL mid-stream without loss or repeats.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startSource, storedEvents, status, tempDir } from './lib.mjs';
import { startWorker, req, until, INGEST_SECRETS, hookHeaders } from '../../worker/test/helpers.mjs';

const PULL_TOKEN = 'pull-token-123';
const J = { 'content-type': 'application/json' };
const post = (w, id) => req(w.url + '/hooks/generic/pull', { body: JSON.stringify({ id }), headers: { ...J, ...hookHeaders } });
const pullEnv = { SYNCCF_PULL_TOKEN: PULL_TOKEN };

test('catch-up, then live; two machines follow one Worker', async () => {
  const w = await startWorker({ bindings: { ...INGEST_SECRETS, PULL_TOKEN, HEARTBEAT_SECONDS: '1' } });
  const a = tempDir(), b = tempDir();
  let pa, pb;
  try {
    for (let i = 0; i < 1200; i += 100) await Promise.all(Array.from({ length: 100 }, (_, k) => post(w, `e${i + k}`)));
    pa = await startSource('pull', { state: a, env: pullEnv, args: ['--worker-url', w.url, '--heartbeat', '1'] });
    pb = await startSource('pull', { state: b, env: pullEnv, args: ['--worker-url', w.url, '--heartbeat', '1'] });
    await until('catch-up on both', async () => (await storedEvents(a)).length === 1200 && (await storedEvents(b)).length === 1200, 30000);
    await post(w, 'live-1');
    await until('the live event on both', async () => (await storedEvents(a)).length === 1201 && (await storedEvents(b)).length === 1201);
    const ev = (await storedEvents(a)).at(-1);
    assert.equal(ev.data.id, 'live-1');
    assert.equal(ev.synccfvia, 'worker');
    // The source's state is noted after each commit and stored with the next one.
    const st = await until('status to catch up', async () => { const x = await status(a); return x.sources?.pull?.cursor === 1201 && x; });
    assert.equal(st.sources.pull.state, 'connected');
    assert.equal(st.sources.pull.cursor, 1201);
    assert.equal(Object.values(st.cursors)[0], '1201');
    assert.equal(st.events.total, 1201);
  } finally {
    await pa?.stop(); await pb?.stop(); await w.dispose();
  }
});

test('a wrong token is reported, not retried in a hot loop', async () => {
  const w = await startWorker({ bindings: { PULL_TOKEN } });
  const p = await startSource('pull', { env: { SYNCCF_PULL_TOKEN: 'wrong' }, args: ['--worker-url', w.url] });
  try {
    await new Promise((r) => setTimeout(r, 2500));
    const st = await until('the error in status', async () => { const s = await status(p.state); return s.sources?.pull?.last_error && s; });
    assert.match(st.sources.pull.last_error, /401/);
    const attempts = (p.log.match(/pull disconnected/g) || []).length;
    assert.ok(attempts >= 1 && attempts <= 3, `backs off (${attempts} attempts in 2.5 s)`);
  } finally { await p.stop(); await w.dispose(); }
});

test('SIGKILL mid-stream: after restart every event is there exactly once', async () => {
  const w = await startWorker({ bindings: { ...INGEST_SECRETS, PULL_TOKEN, HEARTBEAT_SECONDS: '1' } });
  const state = tempDir();
  const args = ['--worker-url', w.url, '--heartbeat', '1'];
  try {
    let p = await startSource('pull', { state, env: pullEnv, args });
    let n = 0;
    const writer = (async () => {
      for (; n < 600; n += 20) await Promise.all(Array.from({ length: 20 }, (_, k) => post(w, `k${n + k}`)));
    })();
    for (let round = 0; round < 3; round++) {
      await new Promise((r) => setTimeout(r, 300 + Math.random() * 400));
      p.child.kill('SIGKILL');
      await p.exited;
      p = await startSource('pull', { state, env: pullEnv, args });
    }
    await writer;
    const all = await until('all 600', async () => { const e = await storedEvents(state); return e.length >= 600 && e; }, 30000);
    const ids = all.map((e) => e.data.id);
    assert.equal(new Set(ids).size, ids.length, 'no repeats');
    assert.equal(all.length, 600);
    await p.stop();
  } finally { await w.dispose(); }
});
