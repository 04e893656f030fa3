// synccf run: one command, the mode from the config file. Each mode against
// its source (the Worker in workerd, the fake Cloudflare API), events reaching
// handlers, /readyz per source, and hybrid failover: the Worker stops, the
// poller takes over, the Worker comes back, the poller stands down.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, readFileSync, readdirSync, mkdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { startDaemon, storedEvents, status, tempDir, cli, VECTORS } from './lib.mjs';
import { startWorker, req, until, INGEST_SECRETS, notifyHeaders, hookHeaders } from '../../worker/test/helpers.mjs';
import { startFakeCloudflare, auditEntries } from './fakecf.mjs';

const J = { 'content-type': 'application/json' };
const PULL_TOKEN = 'pt';

function project() {
  const dir = tempDir('synccf-run-project-');
  mkdirSync(join(dir, '.task', 'checksum'), { recursive: true });
  writeFileSync(join(dir, '.task', 'checksum', 'build'), 'x');
  return dir;
}

function config(text) {
  const f = join(tempDir(), 'synccf.yaml');
  writeFileSync(f, text);
  return f;
}

const ready = async (d) => { const r = await fetch(d.url + '/readyz'); return { status: r.status, body: await r.json() }; };

test('mode tunnel: the receiver and the handlers', async () => {
  const p = project();
  const cfg = config(`mode: tunnel\nhandlers:\n  - name: c\n    match: { type: com.cloudflare.pages.deployment.success }\n    task_cache: { dir: ${p}, tasks: [build] }\n`);
  const d = await startDaemon({ command: 'run', args: ['--config', cfg] });
  try {
    const r = await req(d.url + '/hooks/notifications', { body: readFileSync(join(VECTORS, 'inputs', 'pages-deployment-success.json')), headers: J });
    assert.equal(r.json.accepted, 1);
    await until('invalidation', () => !existsSync(join(p, '.task', 'checksum', 'build')));
    const rd = await ready(d);
    assert.equal(rd.status, 200);
    assert.deepEqual(rd.body.checks, { store: 'ok' });
  } finally { await d.stop(); }
});

test('mode worker: pulls from the Worker into the handlers; /readyz follows the stream', async () => {
  const w = await startWorker({ bindings: { ...INGEST_SECRETS, PULL_TOKEN, HEARTBEAT_SECONDS: '1' } });
  const p = project();
  const cfg = config(`mode: worker\nworker_url: ${w.url}\nheartbeat: 1s\nfailover_after: 2s\nhandlers:\n  - name: c\n    match: { type: com.cloudflare.pages.deployment.success }\n    task_cache: { dir: ${p}, tasks: [build] }\n`);
  const d = await startDaemon({ command: 'run', args: ['--config', cfg], env: { SYNCCF_PULL_TOKEN: PULL_TOKEN } });
  try {
    const sent = await req(w.url + '/hooks/notifications', { body: readFileSync(join(VECTORS, 'inputs', 'pages-deployment-success.json')), headers: notifyHeaders });
    assert.equal(sent.status, 200, sent.text);
    await until('invalidation through the Worker', () => !existsSync(join(p, '.task', 'checksum', 'build')));
    const rd = await until('ready', async () => { const x = await ready(d); return x.status === 200 && x; });
    assert.equal(rd.body.checks.pull, 'ok');
    // Every thread is named for its role (docs/architecture.md, Threads).
    const names = readdirSync(`/proc/${d.child.pid}/task`).map((t) => readFileSync(`/proc/${d.child.pid}/task/${t}/comm`, 'utf8').trim());
    for (const n of ['synccf', 'writer', 'checkpointer', 'dispatch', 'pull', 'MHD-worker']) assert.ok(names.includes(n), `${n} in ${names}`);
    assert.equal(names.filter((n) => n === 'dispatch').length, 4, 'dispatch.concurrency threads');
    await w.dispose();
    const down = await until('not ready once the Worker is gone', async () => { const x = await ready(d); return x.status === 503 && x; }, 15000);
    assert.match(down.body.checks.pull, /unreachable/);
  } finally { await d.stop(); }
});

test('modes queue and poll: from the fake Cloudflare API', async () => {
  const cf = await startFakeCloudflare();
  cf.audit = auditEntries(20, 60000);
  cf.queue = [{ id: 'm', body: JSON.stringify({ specversion: '1.0', id: 'q-1', source: '/x', type: 't', time: '2026-11-20T10:00:00Z', data: {} }), timestamp_ms: Date.now(), attempts: 0 }];
  const env = { CLOUDFLARE_API_TOKEN: cf.token, CLOUDFLARE_ACCOUNT_ID: cf.account, CLOUDFLARE_API_BASE_URL: cf.url, SYNCCF_QUEUE_ID: 'q' };
  const dq = await startDaemon({ command: 'run', args: ['--config', config('mode: queue\n')], env });
  const dp = await startDaemon({ command: 'run', args: ['--config', config('mode: poll\npoll_interval: 1s\n')], env });
  try {
    await until('the queue message', async () => (await storedEvents(dq.state)).length === 1);
    await until('the audit entries', async () => (await storedEvents(dp.state)).length === 20);
    assert.equal((await ready(dq)).body.checks.queue, 'ok');
    assert.equal((await ready(dp)).body.checks.poll, 'ok');
  } finally { await dq.stop(); await dp.stop(); await cf.close(); }
});

test('mode hybrid: the Worker stream and the Queue at once; polling takes over while the Worker is down, then stands down', async () => {
  const persist = tempDir('synccf-do-');
  let w = await startWorker({ bindings: { ...INGEST_SECRETS, PULL_TOKEN, HEARTBEAT_SECONDS: '1' }, persist });
  const port = new URL(w.url).port;
  const cf = await startFakeCloudflare();
  cf.queue = [{ id: 'm', body: JSON.stringify({ specversion: '1.0', id: 'via-queue-1', source: '/x', type: 't', time: '2026-11-20T10:00:00Z', data: {} }), timestamp_ms: Date.now(), attempts: 0 }];
  const env = { SYNCCF_PULL_TOKEN: PULL_TOKEN, CLOUDFLARE_API_TOKEN: cf.token, CLOUDFLARE_ACCOUNT_ID: cf.account, CLOUDFLARE_API_BASE_URL: cf.url };
  const cfg = config(`mode: hybrid\nworker_url: ${w.url}\nqueue_id: q\nheartbeat: 1s\nfailover_after: 1500ms\npoll_interval: 1s\n`);
  const d = await startDaemon({ command: 'run', args: ['--config', cfg], env });
  try {
    assert.equal((await req(w.url + '/hooks/generic/h', { body: '{"id":"via-worker-1"}', headers: { ...J, ...hookHeaders } })).status, 200);
    await until('the Worker event', async () => (await storedEvents(d.state)).some((e) => e.data.id === 'via-worker-1'));
    await until('the Queue message', async () => (await storedEvents(d.state)).some((e) => e.id === 'via-queue-1'));
    assert.equal((await ready(d)).body.checks.queue, 'ok');
    await until('the poller on standby', async () => (await status(d.state)).sources?.poll?.state === 'standby');
    const before = cf.requests.length;

    await w.dispose();
    cf.audit = auditEntries(5, 1000);
    await until('the poller taking over', async () => (await storedEvents(d.state)).filter((e) => e.type.startsWith('com.cloudflare.audit.')).length === 5, 20000);
    assert.ok(cf.requests.length > before, 'polled while the Worker was down');
    assert.match(d.log, /poller taking over/);
    assert.equal((await ready(d)).status, 200, 'still ready: the poller covers');

    w = await startWorker({ bindings: { ...INGEST_SECRETS, PULL_TOKEN, HEARTBEAT_SECONDS: '1' }, persist, port: Number(port) });
    assert.equal((await req(w.url + '/hooks/generic/h', { body: '{"id":"via-worker-2"}', headers: { ...J, ...hookHeaders } })).status, 200);
    await until('the Worker back', async () => (await storedEvents(d.state)).some((e) => e.data.id === 'via-worker-2'), 40000);
    await until('the poller standing down', async () => (await status(d.state)).sources?.poll?.state === 'standby', 10000);
    const quiet = cf.requests.length;
    await new Promise((r) => setTimeout(r, 2000));
    assert.ok(cf.requests.length - quiet <= 1, 'no polling while the stream is up');
    const ids = (await storedEvents(d.state)).map((e) => e.id);
    assert.equal(new Set(ids).size, ids.length);
  } finally { await d.stop(); await w.dispose(); await cf.close(); }
});

test('config check: prints the effective configuration without secrets, and names bad keys', async () => {
  const f = config('mode: worker\nworker_url: https://w.example\npush_secret: ${SYNCCF_TEST_SECRET}\n');
  process.env.SYNCCF_TEST_SECRET = 'whsec_c2VjcmV0';
  const out = await cli(tempDir(), '--config', f, 'config', 'check');
  assert.match(out, /configuration ok/);
  assert.match(out, /"push_secret": "\(set, redacted\)"/);
  assert.doesNotMatch(out, /c2VjcmV0/);
  const bad = config('mode: worker\nworker_urll: x\n');
  await assert.rejects(cli(tempDir(), '--config', bad, 'config', 'check'), (e) => { assert.equal(e.code, 2); assert.match(e.stderr, /:2: key 'worker_urll': unknown key/); return true; });
});

test('SIGHUP reloads the handler rules; a bad file is refused and the old rules stay', async () => {
  const dir = tempDir();
  const mk = (name) => `handlers:\n  - name: ${name}\n    match: { type: dev.synccf.hook.* }\n    exec: { argv: [/bin/sh, -c, "echo ${name} >> ${dir}/ran"] }\n`;
  const cfg = join(dir, 'synccf.yaml');
  writeFileSync(cfg, mk('first'));
  const d = await startDaemon({ command: 'run', args: ['--config', cfg] });
  const ran = () => (existsSync(join(dir, 'ran')) ? readFileSync(join(dir, 'ran'), 'utf8').trim().split('\n') : []);
  try {
    await req(d.url + '/hooks/generic/a', { body: '{"id":"1"}', headers: J });
    await until('first ran', () => ran().length === 1);
    writeFileSync(cfg, mk('second'));
    d.child.kill('SIGHUP');
    await until('reloaded', () => /handler rules reloaded/.test(d.log));
    await req(d.url + '/hooks/generic/a', { body: '{"id":"2"}', headers: J });
    await until('second ran', () => ran().length === 2);
    assert.deepEqual(ran(), ['first', 'second']);
    writeFileSync(cfg, 'handlers: [oops\n');
    d.child.kill('SIGHUP');
    await until('refused', () => /reload refused/.test(d.log));
    await req(d.url + '/hooks/generic/a', { body: '{"id":"3"}', headers: J });
    await until('still second', () => ran().length === 3);
    assert.deepEqual(ran(), ['first', 'second', 'second']);
    assert.equal(d.child.exitCode, null, 'still running');
  } finally { await d.stop(); }
});
