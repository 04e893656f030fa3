// `synccf cloudflare setup | check | teardown` against the fake API: from an
// empty account to all ok, idempotence, drift repaired, teardown back to
// empty, dry runs that change nothing, Cloudflare's errors explained, the
// --env-file of an xplat project; every request synccf makes compared with
// the same operation performed by Cloudflare's official client (the
// `cloudflare` package); and an event posted the way the created
// destination posts it reaching the Worker and synccf's store.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import Cloudflare from 'cloudflare';
import { BIN, VECTORS, startDaemon, storedEvents, tempDir, startSource } from './lib.mjs';
import { startFakeCloudflare, auditEntries } from './fakecf.mjs';
import { startWorker, req, newSecret, until } from '../../worker/test/helpers.mjs';

const ZONE = '023e105f4ecef8ad9ca31a8372d0c353';
const QUEUE = '0123456789abcdef0123456789abcdef';

function config(target, extra = '') {
  const file = join(tempDir(), 'synccf.yaml');
  writeFileSync(file, `worker_url: ${target}
queue_id: ${QUEUE}
handlers:
  - name: site
    match:
      type: com.cloudflare.pages.deployment.success
      subject: marketing-site
      data: { data.environment: ENVIRONMENT_PRODUCTION }
    task_cache: { dir: /tmp/synccf-cloudflare-test-site }
cloudflare:
  alerts:
    - type: dos_attack_l7
      filters: { zones: [${ZONE}] }
  logpush:
    - dataset: workers_trace_events
      fields: [Event, EventTimestampMs, Outcome, ScriptName]
    - dataset: http_requests
      zone_id: ${ZONE}
      filter: '{"where":{"key":"EdgeResponseStatus","operator":"geq","value":500}}'
      max_upload_records: 10000
      max_upload_interval: 60s
  subscriptions:
    - source: workersBuilds.worker
      worker_name: my-worker
      events: [build.succeeded, build.failed]
    - source: workers.script
      events: [deployment.created]
${extra}`);
  return file;
}

const cfEnv = (cf, extra = {}) => ({
  PATH: process.env.PATH, CLOUDFLARE_API_TOKEN: cf.token, CLOUDFLARE_ACCOUNT_ID: cf.account, CLOUDFLARE_API_BASE_URL: cf.url,
  SYNCCF_NOTIFY_SECRET: 'notify-secret-1', SYNCCF_HOOK_TOKEN: 'hook token/1', ...extra,
});

function synccf(args, env) {
  return new Promise((resolve) => execFile(BIN, args, { env }, (e, stdout, stderr) => resolve({ code: e ? e.code : 0, stdout, stderr })));
}
const cloudflare = (cfg, env, ...args) => synccf(['--config', cfg, 'cloudflare', ...args], env);
const changing = (cf) => cf.requests.filter((r) => r.method !== 'GET');

async function fakeWithProject() {
  const cf = await startFakeCloudflare();
  cf.pages['marketing-site'] = [];
  return cf;
}

test('setup from an empty account, check all ok, setup again changes nothing, drift repaired, teardown leaves it as before', async () => {
  const cf = await fakeWithProject();
  const w = await startWorker({ bindings: { NOTIFY_SECRET: 'notify-secret-1', HOOK_TOKEN: 'hook token/1' } });
  const cfg = config(w.url);
  const env = cfEnv(cf);
  try {
    const before = cf.wired();
    assert.deepEqual(before, { webhooks: 0, policies: 0, jobs: 0, subscriptions: 0 });

    const dry = await cloudflare(cfg, env, 'setup', '--dry-run');
    assert.equal(dry.code, 0, dry.stderr);
    assert.equal(changing(cf).length, 0, 'a dry run changes nothing');
    assert.equal((dry.stdout.match(/^would POST /gm) || []).length, 7, dry.stdout);
    assert.doesNotMatch(dry.stdout, /notify-secret-1|hook%20token/, 'secrets redacted');
    assert.match(dry.stdout, /"secret":"\(redacted\)"/);
    assert.match(dry.stdout, /header_Authorization=\(redacted\)/);

    const s1 = await cloudflare(cfg, env, 'setup');
    assert.equal(s1.code, 0, s1.stdout + s1.stderr);
    assert.match(s1.stdout, /setup: 7 created, 0 updated, 0 removed, 0 unchanged/);
    assert.deepEqual(cf.wired(), { webhooks: 1, policies: 2, jobs: 2, subscriptions: 2 });

    // What Cloudflare now holds is what the Worker checks.
    const dest = cf.webhooks[0];
    assert.equal(dest.url, `${w.url}/hooks/notifications`);
    assert.equal(dest.secret, 'notify-secret-1');
    const pages = cf.policies.find((p) => p.alert_type === 'pages_event_alert');
    assert.equal(pages.name, 'synccf-pages-marketing-site');
    assert.deepEqual(pages.mechanisms, { webhooks: [{ id: dest.id }] });
    assert.deepEqual(pages.filters, { project_id: [cf.projects['marketing-site'].id], environment: ['ENVIRONMENT_PRODUCTION'], event: ['EVENT_DEPLOYMENT_SUCCESS'] });
    const job = cf.jobs.account[0];
    assert.equal(job.destination_conf, `${w.url}/hooks/logpush/workers_trace_events?header_Authorization=Bearer%20hook%20token%2F1`);
    assert.equal(job.max_upload_bytes, 50000000, 'within what the Worker holds (MAX_DECOMPRESSED)');
    assert.deepEqual(job.output_options.field_names, ['Event', 'EventTimestampMs', 'Outcome', 'ScriptName']);
    const zjob = cf.jobs[ZONE][0];
    assert.equal(zjob.max_upload_records, 10000);
    assert.equal(zjob.max_upload_interval_seconds, 60);
    const build = cf.subscriptions.find((s) => s.source.type === 'workersBuilds.worker');
    assert.deepEqual(build.source, { type: 'workersBuilds.worker', worker_name: 'my-worker' });
    assert.deepEqual(build.destination, { type: 'queues.queue', queue_id: QUEUE });
    assert.deepEqual(build.events, ['build.succeeded', 'build.failed']);

    const c1 = await cloudflare(cfg, env, 'check', '--json');
    assert.equal(c1.code, 0, c1.stdout + c1.stderr);
    const rows = JSON.parse(c1.stdout);
    assert.equal(rows.length, 8, 'the target and seven objects');
    assert.deepEqual(rows[0], { kind: 'target', name: `${w.url}/healthz`, state: 'ok' });
    assert.ok(rows.every((r) => r.state === 'ok'), c1.stdout);

    cf.requests.length = 0;
    const s2 = await cloudflare(cfg, env, 'setup');
    assert.equal(s2.code, 0, s2.stderr);
    assert.match(s2.stdout, /0 created, 0 updated, 0 removed, 7 unchanged/);
    assert.deepEqual(changing(cf), [], 'no changing call on a second setup');

    // Changed behind synccf's back.
    cf.jobs.account[0].max_upload_bytes = 900000000;
    cf.policies.find((p) => p.name === 'synccf-dos_attack_l7').filters = { zones: ['ffffffffffffffffffffffffffffffff'] };
    cf.subscriptions[0].events = ['build.started'];
    cf.webhooks[0].url = 'https://elsewhere.example.com/hook';
    cf.jobs[ZONE][0].last_error = new Date().toISOString();
    cf.jobs[ZONE][0].error_message = 'destination returned 401';
    const c2 = await cloudflare(cfg, env, 'check');
    assert.equal(c2.code, 1);
    assert.match(c2.stdout, /destination\s+synccf\s+drifted: url/);
    assert.match(c2.stdout, /policy\s+synccf-dos_attack_l7\s+drifted: filters/);
    assert.match(c2.stdout, /logpush\s+synccf-workers-trace-events\s+drifted: max_upload_bytes/);
    assert.match(c2.stdout, /subscription\s+synccf-workersBuilds-worker-my-worker\s+drifted: events/);
    assert.match(c2.stdout, /logpush\s+synccf-http-requests\s+failing: last error .*destination returned 401/);

    cf.requests.length = 0;
    const s3 = await cloudflare(cfg, env, 'setup');
    assert.equal(s3.code, 0, s3.stderr);
    assert.match(s3.stdout, /0 created, 4 updated, 0 removed/);
    assert.deepEqual(changing(cf).map((r) => r.method).sort(), ['PATCH', 'PUT', 'PUT', 'PUT']);
    assert.equal(cf.webhooks[0].url, `${w.url}/hooks/notifications`);
    assert.equal(JSON.parse(changing(cf).find((r) => r.path.includes('destinations')).body).secret, 'notify-secret-1', 'the secret is sent again');
    cf.jobs[ZONE][0].last_complete = new Date(Date.now() + 1000).toISOString();
    const c3 = await cloudflare(cfg, env, 'check');
    assert.equal(c3.code, 0, c3.stdout);

    // Objects that are not synccf's are never touched.
    cf.webhooks.push({ id: 'theirs', name: 'ops pager', url: 'https://ops.example.com/' });
    cf.policies.push({ id: 'theirs-p', name: 'ops: ddos', alert_type: 'dos_attack_l7', enabled: true, mechanisms: { webhooks: [{ id: 'theirs' }] }, filters: {} });
    const t = await cloudflare(cfg, env, 'teardown');
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, /teardown: 0 created, 0 updated, 7 removed/);
    assert.deepEqual(cf.webhooks.map((x) => x.id), ['theirs']);
    assert.deepEqual(cf.policies.map((x) => x.id), ['theirs-p']);
    assert.deepEqual({ jobs: cf.wired().jobs, subscriptions: cf.wired().subscriptions }, { jobs: 0, subscriptions: 0 });
  } finally { await w.dispose(); await cf.close(); }
});

test("Logpush job names keep Cloudflare's rule; a job under the old underscore name is replaced", async () => {
  const cf = await fakeWithProject();
  const cfg = config('http://127.0.0.1:9');
  const env = cfEnv(cf);
  try {
    // What an earlier synccf created (before the fake refused such names).
    cf.jobs.account = [{ id: 9001, dataset: 'workers_trace_events', name: 'synccf-workers_trace_events', enabled: true,
      destination_conf: 'http://127.0.0.1:9/hooks/logpush/workers_trace_events?header_Authorization=Bearer%20x', output_options: null, filter: null,
      max_upload_bytes: 50000000, max_upload_records: 100000, max_upload_interval_seconds: 30, last_error: null, error_message: null }];
    const c = await cloudflare(cfg, env, 'check');
    assert.match(c.stdout, /synccf-workers_trace_events\s+stale/, c.stdout);
    const s = await cloudflare(cfg, env, 'setup');
    assert.equal(s.code, 0, s.stdout + s.stderr);
    const names = [...cf.jobs.account, ...(cf.jobs[ZONE] || [])].map((j) => j.name).sort();
    assert.deepEqual(names, ['synccf-http-requests', 'synccf-workers-trace-events']);
    for (const n of names) assert.match(n, /^[a-zA-Z0-9\-.]*$/);
    assert.match(s.stdout, /removed logpush synccf-workers_trace_events/);
  } finally { await cf.close(); }
});

test("teardown keeps the user's destination (notify_webhook_id) and objects merely starting with synccf", async () => {
  const cf = await fakeWithProject();
  const cfg = config('http://127.0.0.1:9', 'notify_webhook_id: user-dest\n');
  const env = cfEnv(cf);
  try {
    const hook = (id, name) => ({ id, name, url: 'https://example.trycloudflare.com/hooks/notifications', secret: 's', type: 'generic',
      created_at: '2026-01-01T00:00:00Z', last_success: null, last_failure: null });
    // synccf tunnel renamed the user's destination to synccf; synccfoo is someone else's.
    cf.webhooks.push(hook('user-dest', 'synccf'), hook('foo-dest', 'synccfoo'));
    cf.policies.push({ id: 'foo-policy', name: 'synccfoo', alert_type: 'dos_attack_l7', enabled: true, mechanisms: { webhooks: [{ id: 'foo-dest' }] }, filters: {} });
    const t = await cloudflare(cfg, env, 'teardown');
    assert.equal(t.code, 0, t.stdout + t.stderr);
    assert.deepEqual(cf.webhooks.map((w) => w.id).sort(), ['foo-dest', 'user-dest']);
    assert.deepEqual(cf.policies.map((x) => x.id), ['foo-policy']);
    assert.equal(changing(cf).length, 0, t.stdout);
  } finally { await cf.close(); }
});

test('a zone-scoped Logpush job dropped from the file: the zone recorded by setup is visited by check, setup and teardown', async () => {
  const cf = await fakeWithProject();
  const state = tempDir();
  const cfg = config('http://127.0.0.1:9');
  const env = cfEnv(cf);
  const run = (file, ...args) => synccf(['--state', state, '--config', file, 'cloudflare', ...args], env);
  const zoneJob = `    - dataset: http_requests
      zone_id: ${ZONE}
      filter: '{"where":{"key":"EdgeResponseStatus","operator":"geq","value":500}}'
      max_upload_records: 10000
      max_upload_interval: 60s
`;
  const dropped = join(tempDir(), 'dropped.yaml');
  writeFileSync(dropped, readFileSync(cfg, 'utf8').replace(zoneJob, ''));
  assert.notEqual(readFileSync(dropped, 'utf8'), readFileSync(cfg, 'utf8'));
  try {
    assert.equal((await run(cfg, 'setup')).code, 0);
    assert.equal(cf.jobs[ZONE].length, 1);
    assert.equal(readFileSync(join(state, 'cloudflare-zones'), 'utf8'), `${ZONE}\n`);
    const c = await run(dropped, 'check');
    assert.equal(c.code, 1);
    assert.match(c.stdout, /logpush\s+synccf-http-requests\s+stale/, c.stdout);
    const s = await run(dropped, 'setup');
    assert.equal(s.code, 0, s.stdout + s.stderr);
    assert.match(s.stdout, /removed logpush synccf-http-requests/);
    assert.equal(cf.jobs[ZONE].length, 0);
    assert.ok(!existsSync(join(state, 'cloudflare-zones')), 'nothing left to remember');

    // teardown with the zone gone from the file still empties it.
    assert.equal((await run(cfg, 'setup')).code, 0);
    assert.equal(cf.jobs[ZONE].length, 1);
    const t = await run(dropped, 'teardown');
    assert.equal(t.code, 0, t.stdout + t.stderr);
    assert.equal(cf.jobs[ZONE].length, 0);
    assert.deepEqual(cf.wired(), { webhooks: 0, policies: 0, jobs: 0, subscriptions: 0 });
    assert.ok(!existsSync(join(state, 'cloudflare-zones')));
  } finally { await cf.close(); }
});

test('a configuration error in one Logpush job removes no job: setup exits 2 and the live job stays', async () => {
  const cf = await fakeWithProject();
  const cfg = config('http://127.0.0.1:9');
  const env = cfEnv(cf);
  try {
    const s1 = await cloudflare(cfg, env, 'setup');
    assert.equal(s1.code, 0, s1.stdout + s1.stderr);
    assert.equal(cf.wired().jobs, 2);
    // More than the target accepts: an error for that job, not its removal.
    writeFileSync(cfg, readFileSync(cfg, 'utf8').replace('      fields: [', '      max_upload_bytes: 900000000\n      fields: ['));
    const before = cf.requests.length;
    const s2 = await cloudflare(cfg, env, 'setup');
    assert.equal(s2.code, 2, s2.stdout + s2.stderr);
    assert.match(s2.stderr, /max_upload_bytes 900000000 is more than the target accepts/);
    const deletes = cf.requests.slice(before).filter((r) => r.method === 'DELETE');
    assert.deepEqual(deletes, [], 'no DELETE after a configuration error');
    assert.equal(cf.wired().jobs, 2);
  } finally { await cf.close(); }
});

test('a project dropped from the file: setup removes its policy, check calls it stale', async () => {
  const cf = await fakeWithProject();
  cf.pages['docs-site'] = [];
  const cfg = config('http://127.0.0.1:9', '  pages:\n    - project: docs-site\n      environments: [production]\n      events: [success, failed]\n');
  const env = cfEnv(cf);
  try {
    assert.equal((await cloudflare(cfg, env, 'setup')).code, 0);
    const docs = cf.policies.find((p) => p.name === 'synccf-pages-docs-site');
    assert.deepEqual(docs.filters.event, ['EVENT_DEPLOYMENT_SUCCESS', 'EVENT_DEPLOYMENT_FAILED']);
    const cfg2 = config('http://127.0.0.1:9');
    const c = await cloudflare(cfg2, env, 'check');
    assert.match(c.stdout, /policy\s+synccf-pages-docs-site\s+stale/);
    const s = await cloudflare(cfg2, env, 'setup');
    assert.match(s.stdout, /removed policy synccf-pages-docs-site/);
    assert.ok(!cf.policies.some((p) => p.name === 'synccf-pages-docs-site'));
  } finally { await cf.close(); }
});

test("Cloudflare's errors: the missing scope named, an unknown alert type, 429 retried after Retry-After, a partial failure completed by the next setup", async () => {
  const cf = await fakeWithProject();
  const env = cfEnv(cf);
  try {
    const cfg = config('http://127.0.0.1:9');
    // A token without Notifications permission.
    cf.script = [{ status: 403, body: { success: false, errors: [{ code: 10000, message: 'Authentication error' }], messages: [], result: null } }];
    const a = await cloudflare(cfg, env, 'setup');
    assert.equal(a.code, 1);
    assert.match(a.stderr, /Account > Notifications > Edit/);

    // 429 with Retry-After, then it goes through.
    cf.requests.length = 0;
    cf.script = [{ status: 429, headers: { 'retry-after': '1' }, body: { success: false, errors: [{ code: 971, message: 'Please wait and consider throttling your request speed' }], messages: [], result: null } }];
    const b = await cloudflare(cfg, env, 'setup');
    assert.equal(b.code, 0, b.stderr);
    assert.match(b.stderr, /retrying in 1 s/);
    assert.ok(cf.requests[1].t - cf.requests[0].t >= 900, 'waited for Retry-After');
    assert.equal(cf.wired().policies, 2);

    // An alert type Cloudflare does not know; the rest is still wired, the next setup completes.
    await cloudflare(cfg, env, 'teardown');
    const badCfg = config('http://127.0.0.1:9');
    writeFileSync(badCfg, readFileSync(badCfg, 'utf8').replace(`      filters: { zones: [${ZONE}] }\n`, `      filters: { zones: [${ZONE}] }\n    - type: no_such_alert\n`));
    const c = await cloudflare(badCfg, env, 'setup');
    assert.equal(c.code, 1);
    assert.match(c.stderr, /invalid alert_type: no_such_alert/);
    assert.match(c.stderr, /available_alerts/);
    assert.match(c.stdout, /with errors: run it again once fixed/);
    assert.equal(cf.wired().jobs, 2, 'the other objects were still created');
    cf.alertTypes.push('no_such_alert'); // fixed on Cloudflare's side
    const d = await cloudflare(badCfg, env, 'setup');
    assert.equal(d.code, 0, d.stderr);
    assert.match(d.stdout, /1 created, 0 updated, 0 removed, 7 unchanged/);
  } finally { await cf.close(); }
});

test('a plan without webhooks, no target, no secret: plain messages', async () => {
  const cf = await fakeWithProject();
  const env = cfEnv(cf);
  try {
    const cfg = config('http://127.0.0.1:9');
    // The two lists answer; the destination is refused.
    cf.script = [null, null, { status: 400, body: { success: false, errors: [{ code: 17103, message: 'Webhooks are not available on your plan' }], messages: [], result: null } }];
    const p = await cloudflare(cfg, env, 'setup');
    assert.equal(p.code, 1);
    assert.match(p.stderr, /webhook destinations need a zone on a paid plan/);
    const noTarget = join(tempDir(), 'synccf.yaml');
    writeFileSync(noTarget, 'cloudflare:\n  pages: [marketing-site]\n');
    const t = await cloudflare(noTarget, env, 'setup');
    assert.equal(t.code, 2);
    assert.match(t.stderr, /no target: set cloudflare.target or worker_url/);
    const s = await cloudflare(cfg, { ...env, SYNCCF_NOTIFY_SECRET: '' }, 'setup');
    assert.equal(s.code, 2);
    assert.match(s.stderr, /Notifications need a secret.*NOTIFY_SECRET/);
  } finally { await cf.close(); }
});

test("an xplat project's .env: --env-file and xplat's names, shown by config check", async () => {
  const cf = await fakeWithProject();
  const dir = tempDir();
  const envFile = join(dir, '.env');
  writeFileSync(envFile, `# xplat's .env
CF_API_TOKEN=${cf.token}
export CF_ACCOUNT_ID="${cf.account}"
CF_WEBHOOK_SECRET='xplat notify secret'   # the destination's
SYNC_TOKEN=xplat-sync-token
CLOUDFLARE_WORKER_NAME=xplat-sync
CLOUDFLARE_RECEIVER_PORT=8788
CLOUDFLARE_SYNC_ENDPOINT=https://sync.example.com
CLOUDFLARE_API_BASE_URL=${cf.url}/client/v4
`);
  const xplat = join(dir, 'xplat.yaml');
  writeFileSync(xplat, `project: demo\nsync:\n  cloudflare:\n    cloudflare:\n      pages: [marketing-site]\n      logpush:\n        - dataset: workers_trace_events\n`);
  const env = { PATH: process.env.PATH };
  try {
    const chk = await synccf(['--env-file', envFile, '--config', xplat, 'config', 'check'], env);
    assert.equal(chk.code, 0, chk.stderr);
    const shown = JSON.parse(chk.stdout.slice(chk.stdout.indexOf('{')));
    assert.deepEqual(shown.env_fallbacks, { CLOUDFLARE_API_TOKEN: 'CF_API_TOKEN', CLOUDFLARE_ACCOUNT_ID: 'CF_ACCOUNT_ID',
      SYNCCF_NOTIFY_SECRET: 'CF_WEBHOOK_SECRET', SYNCCF_HOOK_TOKEN: 'SYNC_TOKEN', SYNCCF_LISTEN: 'CLOUDFLARE_RECEIVER_PORT' });
    assert.equal(shown.listen, '127.0.0.1:8788');
    assert.deepEqual(shown.cloudflare.pages.map((p) => p.project), ['marketing-site']);

    const s = await synccf(['--env-file', envFile, '--config', xplat, 'cloudflare', 'setup'], env);
    assert.equal(s.code, 0, s.stdout + s.stderr);
    assert.equal(cf.webhooks[0].url, 'https://xplat-sync.example-sub.workers.dev/hooks/notifications', 'the Worker xplat names');
    assert.equal(cf.webhooks[0].secret, 'xplat notify secret');
    assert.match(cf.jobs.account[0].destination_conf, /header_Authorization=Bearer%20xplat-sync-token$/);

    // The process environment beats the file.
    const over = await synccf(['--env-file', envFile, 'config', 'check'], { ...env, SYNCCF_LISTEN: '127.0.0.1:7000' });
    assert.equal(JSON.parse(over.stdout.slice(over.stdout.indexOf('{'))).listen, '127.0.0.1:7000');
    const broken = join(dir, 'broken.env');
    writeFileSync(broken, 'GOOD=1\nBAD="unterminated\n');
    const b = await synccf(['--env-file', broken, 'config', 'check'], env);
    assert.equal(b.code, 2);
    assert.match(b.stderr, /broken\.env: line 2: BAD: unterminated double quote/);
    // version needs no environment: a broken file does not hide it.
    assert.equal((await synccf(['--env-file', broken, 'version'], env)).code, 0);
  } finally { await cf.close(); }
});

// ---- the contract: the same operations through Cloudflare's official client ----

const norm = (r) => ({ method: r.method, path: r.path, query: r.query, body: r.body ? JSON.parse(r.body) : null });

test("contract: every request setup, check and teardown make is the official client's request for that operation", async () => {
  const cfA = await fakeWithProject();
  const target = 'http://127.0.0.1:9';
  const cfg = config(target);
  const env = cfEnv(cfA);
  try {
    for (const op of ['setup', 'check', 'teardown']) assert.notEqual((await cloudflare(cfg, env, op)).code, 2);
  } finally { await cfA.close(); }
  const ours = cfA.requests.map(norm);

  const cfB = await fakeWithProject();
  const client = new Cloudflare({ apiToken: cfB.token, baseURL: `${cfB.url}/client/v4`, maxRetries: 0 });
  const account_id = cfB.account;
  const dest = `${target}/hooks/logpush/workers_trace_events?header_Authorization=Bearer%20hook%20token%2F1`;
  const zdest = `${target}/hooks/logpush/http_requests?header_Authorization=Bearer%20hook%20token%2F1`;
  const subsList = () => client.queues.subscriptions.list({ account_id, page: 1, per_page: 100 });
  const jobsOf = (scope) => client.logpush.jobs.list(scope);
  const description = 'managed by synccf cloudflare setup';
  try {
    // setup
    await client.alerting.policies.list({ account_id });
    await client.alerting.destinations.webhooks.list({ account_id });
    const d = await client.alerting.destinations.webhooks.create({ account_id, name: 'synccf', url: `${target}/hooks/notifications`, secret: 'notify-secret-1' });
    const proj = await client.pages.projects.get('marketing-site', { account_id });
    await client.alerting.policies.create({ account_id, name: 'synccf-pages-marketing-site', alert_type: 'pages_event_alert', enabled: true,
      mechanisms: { webhooks: [{ id: d.id }] }, filters: { project_id: [proj.id], environment: ['ENVIRONMENT_PRODUCTION'], event: ['EVENT_DEPLOYMENT_SUCCESS'] }, description });
    await client.alerting.policies.create({ account_id, name: 'synccf-dos_attack_l7', alert_type: 'dos_attack_l7', enabled: true,
      mechanisms: { webhooks: [{ id: d.id }] }, filters: { zones: [ZONE] }, description });
    await jobsOf({ account_id });
    await client.logpush.jobs.create({ account_id, name: 'synccf-workers-trace-events', dataset: 'workers_trace_events', destination_conf: dest, enabled: true,
      max_upload_bytes: 50000000, output_options: { output_type: 'ndjson', timestamp_format: 'rfc3339', field_names: ['Event', 'EventTimestampMs', 'Outcome', 'ScriptName'] } });
    await jobsOf({ zone_id: ZONE });
    await client.logpush.jobs.create({ zone_id: ZONE, name: 'synccf-http-requests', dataset: 'http_requests', destination_conf: zdest, enabled: true,
      max_upload_bytes: 50000000, max_upload_records: 10000, max_upload_interval_seconds: 60, filter: '{"where":{"key":"EdgeResponseStatus","operator":"geq","value":500}}',
      output_options: { output_type: 'ndjson', timestamp_format: 'rfc3339' } });
    await subsList();
    await client.queues.subscriptions.create({ account_id, name: 'synccf-workersBuilds-worker-my-worker', enabled: true,
      source: { type: 'workersBuilds.worker', worker_name: 'my-worker' }, events: ['build.succeeded', 'build.failed'], destination: { type: 'queues.queue', queue_id: QUEUE } });
    await client.queues.subscriptions.create({ account_id, name: 'synccf-workers-script', enabled: true,
      source: { type: 'workers.script' }, events: ['deployment.created'], destination: { type: 'queues.queue', queue_id: QUEUE } });
    // check (reads only)
    await client.alerting.policies.list({ account_id });
    await client.alerting.destinations.webhooks.list({ account_id });
    await client.pages.projects.get('marketing-site', { account_id });
    await jobsOf({ account_id });
    await jobsOf({ zone_id: ZONE });
    await subsList();
    // teardown
    const pols = (await client.alerting.policies.list({ account_id })).result;
    const hooks = (await client.alerting.destinations.webhooks.list({ account_id })).result;
    for (const p of pols) await client.alerting.policies.delete(p.id, { account_id });
    for (const h of hooks) await client.alerting.destinations.webhooks.delete(h.id, { account_id });
    for (const j of (await jobsOf({ account_id })).result) await client.logpush.jobs.delete(j.id, { account_id });
    for (const j of (await jobsOf({ zone_id: ZONE })).result) await client.logpush.jobs.delete(j.id, { zone_id: ZONE });
    for (const s of (await subsList()).result) await client.queues.subscriptions.delete(s.id, { account_id });
  } finally { await cfB.close(); }
  const theirs = cfB.requests.map(norm);
  assert.equal(ours.length, theirs.length, `synccf made ${ours.length} requests, the client ${theirs.length}:\n${ours.map((r) => r.method + ' ' + r.path).join('\n')}`);
  for (let i = 0; i < ours.length; i++) assert.deepEqual(ours[i], theirs[i], `request ${i + 1}`);
});

test("contract: poll, queue and tunnel's existing calls are the official client's", async () => {
  // poll: the audit log v2 and a Pages project's deployments.
  const cfA = await startFakeCloudflare();
  cfA.audit = auditEntries(3);
  cfA.pages['marketing-site'] = [];
  const p = await startSource('poll', { env: cfEnv(cfA, { SYNCCF_PAGES_PROJECTS: 'marketing-site' }), args: ['--interval', '1h'] });
  await until('the first poll', () => cfA.requests.some((r) => r.path.endsWith('/deployments')) && cfA.requests.some((r) => r.path.endsWith('/logs/audit')));
  await p.stop();
  // queue: pull and ack.
  cfA.queue.push({ id: 'm1', body: JSON.parse(readFileSync(join(VECTORS, 'inputs', 'queue-pull-response.json'), 'utf8')).result.messages[0].body, timestamp_ms: Date.now(), attempts: 0 });
  const q = await startSource('queue', { env: cfEnv(cfA), args: ['--queue-id', QUEUE] });
  await until('the ack', () => cfA.requests.some((r) => r.path.endsWith('/messages/ack')));
  await q.stop();
  await cfA.close();
  const first = (suffix) => norm(cfA.requests.find((r) => r.path.endsWith(suffix)));
  const audit = first('/logs/audit'), deps = first('/deployments'), pull = first('/messages/pull'), ack = first('/messages/ack');

  const cfB = await startFakeCloudflare();
  cfB.pages['marketing-site'] = [];
  const client = new Cloudflare({ apiToken: cfB.token, baseURL: `${cfB.url}/client/v4`, maxRetries: 0 });
  const account_id = cfB.account;
  try {
    await client.accounts.logs.audit.list({ account_id, ...audit.query });
    await client.pages.projects.deployments.list('marketing-site', { account_id, ...deps.query });
    await client.queues.messages.pull(QUEUE, { account_id, ...pull.body });
    await client.queues.messages.ack(QUEUE, { account_id, ...ack.body });
    // tunnel: the destination update, with what tunnel.c sends.
    await client.alerting.destinations.webhooks.update('dest-1', { account_id, name: 'synccf', url: 'https://a.trycloudflare.com/hooks/notifications', secret: 'ns' });
  } finally { await cfB.close(); }
  const [a2, d2, p2, k2, t2] = cfB.requests.map(norm);
  assert.deepEqual(audit, { ...a2, query: { ...a2.query } });
  assert.deepEqual(deps, d2);
  assert.deepEqual(pull, p2);
  assert.deepEqual(ack, k2);
  assert.equal(t2.method, 'PUT');
  assert.equal(t2.path, `/client/v4/accounts/${account_id}/alerting/v3/destinations/webhooks/dest-1`);
  assert.deepEqual(Object.keys(t2.body).sort(), ['name', 'secret', 'url'], 'tunnel.c sends name, url, secret (tests/integration/tunnel.test.mjs)');
});

// ---- events flow through what setup created ----

test('an event posted the way the created destination posts it reaches the Worker and synccf', async () => {
  const cf = await fakeWithProject();
  const pushSecret = newSecret();
  const state = tempDir();
  const d = await startDaemon({ state, env: { SYNCCF_PUSH_SECRET: pushSecret } });
  const w = await startWorker({ bindings: { NOTIFY_SECRET: 'notify-secret-1', HOOK_TOKEN: 'hook token/1', SYNC_ENDPOINT: d.url, SYNC_SECRET: pushSecret } });
  try {
    const s = await cloudflare(config(w.url), cfEnv(cf), 'setup');
    assert.equal(s.code, 0, s.stderr);
    const dest = cf.webhooks[0];
    const body = readFileSync(join(VECTORS, 'inputs', 'pages-deployment-success.json'));
    // As Cloudflare's Notifications deliver: POST, JSON, the secret in cf-webhook-auth.
    const r = await req(dest.url, { body, headers: { 'content-type': 'application/json', 'cf-webhook-auth': dest.secret } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.accepted, 1);
    const wrong = await req(dest.url, { body, headers: { 'content-type': 'application/json', 'cf-webhook-auth': 'not-it' } });
    assert.equal(wrong.status, 401);
    // A Logpush batch as the created job delivers it: header_<Name> parameters become headers.
    const conf = new URL(cf.jobs.account[0].destination_conf);
    const auth = conf.searchParams.get('header_Authorization');
    conf.search = '';
    const lp = await req(conf.href.replace('workers_trace_events', 'http_requests'), { body: readFileSync(join(VECTORS, 'inputs', 'http_requests.ndjson.gz')), headers: { authorization: auth } });
    assert.equal(lp.status, 200, lp.text);
    const stored = await until('the events in synccf', async () => { const e = await storedEvents(state); return e.length >= 1 + lp.json.accepted && e; });
    assert.ok(stored.some((e) => e.type === 'com.cloudflare.pages.deployment.success' && e.synccfvia === 'worker'));
  } finally { await w.dispose(); await d.stop(); await cf.close(); }
});
