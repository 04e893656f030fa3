// synccf poll and synccf queue against a local fake of Cloudflare's API that
// serves the documented envelopes: pagination, v1 fallback, 429 with
// Retry-After, 5xx, malformed JSON, a refused token, leases and redelivery,
// and SIGKILL mid-run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startDaemon, startSource, storedEvents, status, tempDir, post, VECTORS } from './lib.mjs';
import { startFakeCloudflare, auditEntries } from './fakecf.mjs';
import { until } from '../../worker/test/helpers.mjs';

const env = (cf, extra = {}) => ({ CLOUDFLARE_API_TOKEN: cf.token, CLOUDFLARE_ACCOUNT_ID: cf.account, CLOUDFLARE_API_BASE_URL: cf.url, ...extra });
const auditRequests = (cf) => cf.requests.filter((r) => r.path.includes('audit'));

test('poll: pages, overlap without duplicates, new entries on the next run', async () => {
  const cf = await startFakeCloudflare();
  cf.audit = auditEntries(2500, 30000);
  const p = await startSource('poll', { env: env(cf), args: ['--interval', '1s', '--overlap', '2m'] });
  try {
    await until('2500 events', async () => (await storedEvents(p.state)).length === 2500, 20000);
    const evs = await storedEvents(p.state);
    assert.equal(evs[0].type, 'com.cloudflare.audit.create');
    assert.equal(evs[0].id, `audit-${cf.audit[0].id}`);
    assert.ok(evs.every((e) => e.synccfvia === 'poll'));
    const first = auditRequests(cf);
    assert.ok(first.length >= 3, 'three pages of 1000');
    assert.ok(first.every((r) => r.query.since && r.query.before && r.query.direction === 'asc'));
    cf.audit.push(...auditEntries(3, 1000).map((e, i) => ({ ...e, id: `new-${i}` })));
    await until('the new entries', async () => (await storedEvents(p.state)).length === 2503, 10000);
    const st = await until('status ok', async () => { const s = await status(p.state); return s.sources?.poll?.state === 'ok' && s.duplicates?.poll > 0 && s; });
    assert.ok(st.sources.poll.high_water_mark);
    assert.ok(Object.keys(st.cursors).some((k) => k.startsWith('poll:audit:')));
  } finally { await p.stop(); await cf.close(); }
});

test('poll: 429 waits for Retry-After, 5xx backs off, malformed JSON is an error, then it recovers', async () => {
  const r429 = JSON.parse(readFileSync(join(VECTORS, 'inputs', 'audit-error-429.json'), 'utf8').toString());
  const cf = await startFakeCloudflare();
  cf.audit = auditEntries(10, 60000);
  cf.script = [{ status: 429, headers: { 'retry-after': '2' }, body: r429 }, { status: 502 }, 'malformed'];
  const p = await startSource('poll', { env: env(cf), args: ['--interval', '1s'] });
  try {
    await until('the events', async () => (await storedEvents(p.state)).length === 10, 20000);
    const reqs = auditRequests(cf);
    assert.ok(reqs.length >= 4, 'the 429, the 502, the malformed answer, then success');
    assert.ok(reqs[1].t - reqs[0].t >= 1900, `waited for Retry-After: 2 (${reqs[1].t - reqs[0].t} ms)`);
    assert.match(p.log, /audit log request failed/);
    const st = await until('the request count in status', async () => { const s = await status(p.state); return s.sources?.poll?.requests >= 4 && s; });
    assert.equal(st.sources.poll.state, 'ok');
    assert.ok(st.sources.poll.last_success);
  } finally { await p.stop(); await cf.close(); }
});

test('poll: a refused token is reported and not retried in a hot loop', async () => {
  const cf = await startFakeCloudflare();
  cf.audit = auditEntries(5);
  const p = await startSource('poll', { env: env(cf, { CLOUDFLARE_API_TOKEN: 'wrong' }), args: ['--interval', '1s'] });
  try {
    const st = await until('auth_error', async () => { const s = await status(p.state); return s.sources?.poll?.state === 'auth_error' && s; });
    assert.match(st.sources.poll.last_error, /403: Authentication error/);
    await new Promise((r) => setTimeout(r, 2000));
    assert.ok(auditRequests(cf).length <= 4, `${auditRequests(cf).length} requests in ~2.5 s`);
    assert.equal((await storedEvents(p.state)).length, 0);
  } finally { await p.stop(); await cf.close(); }
});

test('poll: falls back to the v1 API where v2 is refused', async () => {
  const cf = await startFakeCloudflare();
  cf.v2 = false;
  cf.audit = auditEntries(130, 60000);
  const p = await startSource('poll', { env: env(cf), args: ['--interval', '1s'] });
  try {
    await until('130 events', async () => (await storedEvents(p.state)).length === 130, 15000);
    assert.ok(cf.requests.some((r) => r.path.endsWith('/audit_logs') && r.query.page === '2'), 'v1 page 2 was read');
    const st = await until('v1 noted', async () => { const s = await status(p.state); return s.sources?.poll?.api === 'v1' && s; });
    assert.equal(st.sources.poll.api, 'v1');
  } finally { await p.stop(); await cf.close(); }
});

// Pages deployments in the API's shape (tests/vectors/inputs/pages-deployments.json).
function deployment(project, n, createdMs, { stage = 'deploy', status = 'success', id } = {}) {
  const created = new Date(createdMs).toISOString();
  return {
    id: id ?? `${project.slice(0, 4)}${String(n).padStart(4, '0')}-0000-4000-8000-000000000000`, short_id: `${project.slice(0, 4)}${String(n).padStart(4, '0')}`,
    project_id: `${project}-id`, project_name: project, environment: n % 2 ? 'preview' : 'production', url: `https://${n}.${project}.pages.dev`,
    created_on: created, modified_on: created, aliases: null,
    latest_stage: { name: stage, started_on: created, ended_on: status === 'active' ? null : new Date(createdMs + 60000).toISOString(), status },
    stages: [], deployment_trigger: { type: 'ad_hoc', metadata: {} }, is_skipped: false,
  };
}

test('poll: Pages deployments become the events their notifications make; a build is read again until it ends', async () => {
  const cf = await startFakeCloudflare();
  const now = Date.now();
  const fixture = JSON.parse(readFileSync(join(VECTORS, 'inputs', 'pages-deployments.json'), 'utf8')).result.at(-1);
  cf.pages['marketing-site'] = [
    ...Array.from({ length: 30 }, (_, i) => deployment('marketing-site', i, now - 3600000 + i * 60000)),
    { ...fixture, created_on: new Date(now - 7200000).toISOString() },
    deployment('marketing-site', 90, now - 3 * 86400000), // before the first run's 24 h window
    deployment('marketing-site', 91, now - 1200000, { stage: 'build', status: 'active' }),
    deployment('marketing-site', 92, now - 60000), // newer than the build, finished
  ];
  cf.pages.docs = [deployment('docs', 1, now - 600000), deployment('docs', 2, now - 300000, { stage: 'build', status: 'failure' })];
  const state = tempDir();
  let p = await startSource('poll', { state, env: env(cf, { SYNCCF_PAGES_PROJECTS: 'marketing-site' }), args: ['--interval', '1s', '--overlap', '1s', '--pages-project', 'docs'] });
  try {
    const pages = async () => (await storedEvents(p.state)).filter((e) => e.source === '/cloudflare/pages');
    await until('35 deployment events', async () => (await pages()).length === 35, 15000);
    const evs = await pages();
    const byId = Object.fromEntries(evs.map((e) => [e.id, e]));
    const building = cf.pages['marketing-site'].at(-2);
    assert.equal(byId[`pages-${building.id}-started`]?.type, 'com.cloudflare.pages.deployment.started');
    assert.equal(byId['pages-docs0002-0000-4000-8000-000000000000-failed']?.subject, 'docs');
    assert.ok(!Object.keys(byId).some((id) => id.includes('0090')), 'a deployment older than the first window is not read');
    const ok = byId[`pages-${fixture.id}-success`];
    assert.deepEqual([ok?.type, ok?.subject, ok?.data.data.event, ok?.data.data.environment], ['com.cloudflare.pages.deployment.success', 'marketing-site', 'EVENT_DEPLOYMENT_SUCCESS', 'ENVIRONMENT_PRODUCTION']);
    assert.equal(evs.filter((e) => e.type === 'com.cloudflare.pages.deployment.success').length, 33);
    const lists = cf.requests.filter((r) => r.path.endsWith('/marketing-site/deployments'));
    assert.deepEqual(lists.slice(0, 2).map((r) => r.query.page), ['1', '2'], 'page 2 read: 33 in the window, 25 a page');

    // The build ends: its outcome is read on a later run, once. A cursor at
    // the newest deployment (with an overlap of 1 s) would never see it: the
    // cursor is held back to the build while it runs.
    building.latest_stage = { ...building.latest_stage, name: 'deploy', status: 'success', ended_on: new Date().toISOString() };
    await until('the finished build', async () => (await pages()).some((e) => e.id === `pages-${building.id}-success`), 10000);
    const st = await status(p.state);
    const cursor = st.cursors[`poll:pages:${cf.account}:marketing-site`];
    assert.ok(cursor && Date.parse(cursor.value ?? cursor) > Date.parse(building.created_on), `cursor ${JSON.stringify(cursor)} moves on once the build is over`);
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal((await pages()).length, 36, 'later runs add nothing');
  } finally { await p.stop(); }

  // The same deployment notified by Cloudflare is a duplicate of the polled one.
  const secret = 'pages-notify-secret';
  const d = await startDaemon({ state, env: { SYNCCF_NOTIFY_SECRET: secret } });
  try {
    const body = readFileSync(join(VECTORS, 'inputs', 'pages-deployment-success.json'), 'utf8');
    const r = await post(d.url + '/hooks/notifications', body, { 'content-type': 'application/json', 'cf-webhook-auth': secret });
    assert.deepEqual([r.status, r.json], [200, { accepted: 0, duplicates: 1 }]);
  } finally { await d.stop(); }

  // Pages only (poll_audit off), for a project the account does not have:
  // a clear error, and the audit log is not asked.
  cf.pages = {};
  const auditBefore = auditRequests(cf).length;
  p = await startSource('poll', { state: tempDir(), env: env(cf, { SYNCCF_POLL_AUDIT: 'false' }), args: ['--interval', '1s', '--pages-project', 'no-such-project'] });
  try {
    const st = await until('the error in status', async () => { const s = await status(p.state); return s.sources?.poll?.last_error?.includes('no-such-project') && s; }, 10000);
    assert.equal(st.sources.poll.state, 'error');
    assert.equal(auditRequests(cf).length, auditBefore, 'poll_audit off: no audit log request');
  } finally { await p.stop(); await cf.close(); }
});

test('poll: SIGKILL mid-run, restart: every entry exactly once', async () => {
  const cf = await startFakeCloudflare();
  cf.audit = auditEntries(6000, 10000);
  const state = tempDir();
  let p = await startSource('poll', { state, env: env(cf), args: ['--interval', '1s'] });
  await new Promise((r) => setTimeout(r, 250));
  p.child.kill('SIGKILL');
  await p.exited;
  p = await startSource('poll', { state, env: env(cf), args: ['--interval', '1s'] });
  try {
    const all = await until('6000', async () => { const e = await storedEvents(state); return e.length >= 6000 && e; }, 30000);
    assert.equal(all.length, 6000);
    assert.equal(new Set(all.map((e) => e.id)).size, 6000);
  } finally { await p.stop(); await cf.close(); }
});

function queueFixture() {
  const r = JSON.parse(readFileSync(join(VECTORS, 'inputs', 'queue-pull-response.json'), 'utf8'));
  return r.result.messages[0].body;
}

function qEnv(cf) { return env(cf, { SYNCCF_QUEUE_ID: 'q1' }); }
const qArgs = ['--interval', '1s'];

test('queue: Event Subscription and CloudEvent messages stored, then acked; bad ones acked and counted', async () => {
  const cf = await startFakeCloudflare();
  const ce = JSON.stringify({ specversion: '1.0', id: 'from-worker-1', source: '/cloudflare/pages', type: 'com.cloudflare.pages.deployment.success', time: '2026-11-20T10:00:00Z', data: {} });
  cf.queue = [
    { id: 'm1', body: queueFixture(), timestamp_ms: Date.now(), attempts: 0 },
    { id: 'm2', body: ce, timestamp_ms: Date.now(), attempts: 0 },
    { id: 'm3', body: '{"nope":', timestamp_ms: Date.now(), attempts: 0 },
  ];
  const q = await startSource('queue', { env: qEnv(cf), args: qArgs });
  try {
    await until('all acked', () => cf.queue.every((m) => m.acked));
    const evs = await storedEvents(q.state);
    assert.deepEqual(evs.map((e) => e.type).sort(), ['cf.workersBuilds.worker.build.succeeded', 'com.cloudflare.pages.deployment.success']);
    const sub = evs.find((e) => e.type.startsWith('cf.'));
    const vec = JSON.parse(readFileSync(join(VECTORS, 'queue-event-subscription.json'), 'utf8')).expected[0];
    assert.equal(sub.id, vec.id, 'the vector id');
    assert.equal(sub.synccfvia, 'queue');
    const st = await until('counted', async () => { const s = await status(q.state); return s.rejected.bad_message === 1 && s.sources?.queue?.rejected === 1 && s; });
    assert.equal(st.sources.queue.rejected, 1);
  } finally { await q.stop(); await cf.close(); }
});

test('queue: a lost ack means redelivery after the lease, stored once', async () => {
  const cf = await startFakeCloudflare();
  cf.queue = Array.from({ length: 20 }, (_, i) => ({ id: `r${i}`, body: JSON.stringify({ specversion: '1.0', id: `redeliver-${i}`, source: '/x', type: 't', time: '2026-11-20T10:00:00Z', data: {} }), timestamp_ms: Date.now(), attempts: 0 }));
  const pulls = () => cf.requests.filter((r) => r.path.endsWith('/pull')).length;
  // The first ack fails: its messages come back after the visibility timeout.
  const q = await startSource('queue', { env: qEnv(cf), args: qArgs });
  try {
    await until('first pull', () => pulls() >= 1);
  } finally { await q.stop(); }
  cf.queue.forEach((m) => { m.acked = false; m.leasedUntil = 0; }); // as if the ack had been lost
  const q2 = await startSource('queue', { state: q.state, env: qEnv(cf), args: qArgs });
  try {
    await until('all acked again', () => cf.queue.every((m) => m.acked));
    const evs = await storedEvents(q.state);
    assert.equal(evs.length, 20, 'redelivered messages are duplicates');
    const st = await until('duplicates counted', async () => { const s = await status(q.state); return s.duplicates.queue >= 20 && s; });
    assert.ok(st.duplicates.queue >= 20);
    assert.ok(cf.queue.every((m) => m.attempts >= 2));
  } finally { await q2.stop(); await cf.close(); }
});

test('queue: 429 and 5xx back off; an empty queue is polled ever more slowly', async () => {
  const cf = await startFakeCloudflare();
  cf.script = [{ status: 429, headers: { 'retry-after': '1' } }, { status: 503 }];
  cf.queue = [{ id: 'x', body: queueFixture(), timestamp_ms: Date.now(), attempts: 0 }];
  const q = await startSource('queue', { env: qEnv(cf), args: qArgs });
  try {
    await until('stored after the failures', async () => (await storedEvents(q.state)).length === 1, 15000);
    const t0 = Date.now(), n0 = cf.requests.length;
    await new Promise((r) => setTimeout(r, 3000));
    const n = cf.requests.filter((r) => r.path.endsWith('/pull')).length;
    assert.ok(cf.requests.length - n0 <= 4, `idle backoff: ${cf.requests.length - n0} pulls in ${Date.now() - t0} ms`);
    assert.ok(n >= 3);
  } finally { await q.stop(); await cf.close(); }
});

test('queue: SIGKILL mid-batch and two consumers sharing the queue: every message once', async () => {
  const cf = await startFakeCloudflare();
  const N = 1500;
  cf.queue = Array.from({ length: N }, (_, i) => ({ id: `k${i}`, body: JSON.stringify({ specversion: '1.0', id: `kill-${i}`, source: '/x', type: 't', time: '2026-11-20T10:00:00Z', data: {} }), timestamp_ms: Date.now(), attempts: 0 }));
  const a = tempDir(), b = tempDir();
  // Small batches: many pulls, so that both consumers are at work together.
  const cfg = join(tempDir(), 'synccf.yaml');
  writeFileSync(cfg, 'queue_batch: 5\nqueue_visibility: 1s\n'); // a killed consumer's leases expire fast
  const args = [...qArgs, '--config', cfg];
  const qb = await startSource('queue', { state: b, env: { ...qEnv(cf) }, args });
  let qa = await startSource('queue', { state: a, env: { ...qEnv(cf) }, args });
  await new Promise((r) => setTimeout(r, 150));
  qa.child.kill('SIGKILL');
  await qa.exited;
  qa = await startSource('queue', { state: a, env: qEnv(cf), args });
  try {
    await until('everything acked', () => cf.queue.every((m) => m.acked), 60000);
    const ea = (await storedEvents(a)).map((e) => e.id), eb = (await storedEvents(b)).map((e) => e.id);
    assert.equal(new Set(ea).size, ea.length);
    assert.equal(new Set(eb).size, eb.length);
    assert.equal(new Set([...ea, ...eb]).size, N, 'none missing');
    assert.ok(ea.length > 0 && eb.length > 0, `shared: ${ea.length} + ${eb.length}`);
  } finally { await qa.stop(); await qb.stop(); await cf.close(); }
});
