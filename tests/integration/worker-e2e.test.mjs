// End to end: Cloudflare payloads posted to the Worker (in workerd) are pushed
// to the real `synccf receive`, stored once, and fire a task-cache
// invalidation; while synccf is down they wait at the edge and arrive in
// order once it is back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { startDaemon, startSource, storedEvents, tempDir, cli, VECTORS } from './lib.mjs';
import { startWorker, req, newSecret, until, INGEST_SECRETS, notifyHeaders, hookHeaders } from '../../worker/test/helpers.mjs';

const fixture = (n) => readFileSync(join(VECTORS, 'inputs', n));

test('Worker → push → synccf receive → task-cache; receiver down, then back, in order', async () => {
  const secret = newSecret();
  const project = tempDir('synccf-e2e-project-');
  mkdirSync(join(project, '.task', 'checksum'), { recursive: true });
  writeFileSync(join(project, '.task', 'checksum', 'build'), 'x');
  const cfg = join(tempDir(), 'synccf.yaml');
  writeFileSync(cfg, `handlers:\n  - name: site\n    match: { type: com.cloudflare.pages.deployment.success }\n    task_cache: { dir: ${project}, tasks: [build] }\n`);
  const state = tempDir();
  const env = { SYNCCF_PUSH_SECRET: secret };
  let d = await startDaemon({ state, env, args: ['--config', cfg] });
  const port = d.port;
  const w = await startWorker({ bindings: { ...INGEST_SECRETS, SYNC_ENDPOINT: d.url, SYNC_SECRET: secret, PUSH_BACKOFF_MS: '200', PUSH_MAX_BACKOFF_MS: '1000' } });
  try {
    const J = { 'content-type': 'application/json', ...hookHeaders };
    assert.equal((await req(w.url + '/hooks/notifications', { body: fixture('pages-deployment-success.json'), headers: notifyHeaders })).json.accepted, 1);
    assert.equal((await req(w.url + '/hooks/logpush/http_requests', { body: fixture('http_requests.ndjson.gz'), headers: hookHeaders })).json.accepted, 4);
    await req(w.url + '/hooks/notifications', { body: fixture('pages-deployment-success.json'), headers: notifyHeaders }); // duplicate at the edge

    const stored = await until('5 events in synccf', async () => { const s = await storedEvents(state); return s.length === 5 && s; });
    assert.ok(stored.every((e) => e.synccfvia === 'worker'));
    assert.equal(stored[0].id, 'pages-3b6c1f0e-2a4d-4c5e-8f9a-b0c1d2e3f4a5-success');
    await until('the task-cache invalidation', () => !existsSync(join(project, '.task', 'checksum', 'build')));

    // synccf goes away; events wait in the Durable Object.
    await d.stop();
    for (let i = 0; i < 4; i++)
      assert.equal((await req(w.url + '/hooks/generic/ci', { body: JSON.stringify({ id: `while-down-${i}` }), headers: J })).status, 200);
    await new Promise((r) => setTimeout(r, 700));
    d = await startDaemon({ state, env, args: ['--config', cfg], listen: `127.0.0.1:${port}` });
    const after = await until('the backlog to arrive', async () => { const s = await storedEvents(state); return s.length === 9 && s; }, 20000);
    assert.deepEqual(after.slice(5).map((e) => e.data.id), ['while-down-0', 'while-down-1', 'while-down-2', 'while-down-3'], 'in order');
    const ids = after.map((e) => e.id);
    assert.equal(new Set(ids).size, ids.length, 'each stored once');
    const st = JSON.parse(await cli(state, 'status', '--json'));
    assert.equal(st.events.by_via.worker, 9);
  } finally {
    await w.dispose();
    await d.stop();
  }
});

test('integers past 64 bits: kept by the Worker, pushed, pulled and stored digit for digit (vector generic-bigint)', async () => {
  const secret = newSecret();
  const PULL_TOKEN = 'pull-token-big';
  const pushed = tempDir(), pulled = tempDir();
  const d = await startDaemon({ state: pushed, env: { SYNCCF_PUSH_SECRET: secret } });
  const w = await startWorker({ bindings: { ...INGEST_SECRETS, SYNC_ENDPOINT: d.url, SYNC_SECRET: secret, PULL_TOKEN, HEARTBEAT_SECONDS: '1' } });
  let p;
  try {
    const v = JSON.parse(readFileSync(join(VECTORS, 'generic-bigint.json'), 'utf8'));
    const body = fixture('generic-bigint.json');
    assert.equal((await req(w.url + `/hooks/generic/${v.name}`, { body, headers: { 'content-type': 'application/json', ...hookHeaders } })).json.accepted, 1);
    p = await startSource('pull', { state: pulled, env: { SYNCCF_PULL_TOKEN: PULL_TOKEN }, args: ['--worker-url', w.url, '--heartbeat', '1'] });
    const data = `"data":${body.toString().trim()}}`;
    for (const [how, state] of [['pushed', pushed], ['pulled', pulled]]) {
      const line = await until(`the event ${how}`, async () => (await cli(state, 'events', 'list', '--json')).trim() || false, 20000);
      assert.ok(line.endsWith(data), `${how}: data digit for digit\n${line}`);
      assert.ok(line.startsWith(`{"specversion":"1.0","id":"${v.expected[0].id}",`), how);
    }
  } finally {
    await p?.stop();
    await w.dispose();
    await d.stop();
  }
});
