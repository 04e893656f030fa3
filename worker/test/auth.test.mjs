// The ingest routes are closed by default: a route whose secret is unset
// answers 401 naming the secret; ALLOW_UNAUTHENTICATED keeps the routes it
// names open, and /v1/status, /healthz and each request's log line say so.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startWorker, req, ROOT } from './helpers.mjs';

const fixture = (n) => readFileSync(join(ROOT, 'tests', 'vectors', 'inputs', n));
const J = { 'content-type': 'application/json' };
const PULL_TOKEN = 'pull-t0ken';
const pullH = { authorization: `Bearer ${PULL_TOKEN}` };

// Every ingest route: [path, body, headers, the route's name, its secret, events it stores].
const ROUTES = [
  ['/hooks/notifications', fixture('pages-deployment-success.json'), J, 'notifications', 'NOTIFY_SECRET', 1],
  ['/webhook/pages', fixture('pages-deployment-failed.json'), J, 'notifications', 'NOTIFY_SECRET', 1],
  ['/webhook/alert', fixture('ddos-l7.json'), J, 'notifications', 'NOTIFY_SECRET', 1],
  ['/hooks/logpush/http_requests', fixture('http_requests.ndjson.gz'), {}, 'logpush', 'HOOK_TOKEN', 4],
  ['/logpush?dataset=workers_trace_events', fixture('workers_trace_events.ndjson.gz'), {}, 'logpush', 'HOOK_TOKEN', 5],
  ['/hooks/generic/deploy', fixture('generic-deploy.json'), J, 'generic', 'HOOK_TOKEN', 1],
];

const status = async (w) => {
  const r = await req(w.url + '/v1/status', { method: 'GET', headers: pullH });
  assert.equal(r.status, 200, r.text);
  return r.json;
};

// A Worker whose log lines are kept, parsed.
async function worker(bindings) {
  const lines = [];
  const w = await startWorker({
    bindings: { PULL_TOKEN, ...bindings },
    onLog: ({ level, message }) => { try { lines.push({ level, ...JSON.parse(message) }); } catch { /* not ours */ } },
  });
  return { ...w, lines };
}

test('without its secret every ingest route answers 401 naming the secret, and stores nothing', async () => {
  const w = await worker({});
  try {
    for (const [path, body, headers, name, secret] of ROUTES) {
      // Whatever credentials come along: there is nothing to compare them with.
      for (const h of [headers, { ...headers, 'cf-webhook-auth': 'guess', authorization: 'Bearer guess' }]) {
        const r = await req(w.url + path, { body, headers: h });
        assert.equal(r.status, 401, `${path}: ${r.text}`);
        assert.equal(r.json.reason, 'unauthorized');
        assert.match(r.json.error, new RegExp(`closed until ${secret} is set`), path);
        assert.match(r.json.error, new RegExp(`ALLOW_UNAUTHENTICATED=${name}\\b`), path);
      }
    }
    const st = await status(w);
    assert.equal(st.events, 0);
    assert.deepEqual(st.auth, { routes: { notifications: 'closed', logpush: 'closed', generic: 'closed' }, unauthenticated: [], ignored: [] });
    const h = await req(w.url + '/healthz', { method: 'GET' });
    assert.deepEqual(h.json, { ok: true, unauthenticated: [] });
    const rejected = w.lines.filter((l) => l.msg === 'request rejected');
    assert.equal(rejected.length, ROUTES.length * 2, JSON.stringify(w.lines));
    assert.ok(rejected.every((l) => l.status === 401 && !('unauthenticated' in l)));
  } finally { await w.dispose(); }
});

test('one secret set: its routes need it, the others stay closed naming theirs; xplat\'s routes take HOOK_TOKEN too', async () => {
  const w = await worker({ HOOK_TOKEN: 'hook-t0ken' });
  try {
    const bearer = { authorization: 'Bearer hook-t0ken' };
    for (const [path, body, headers, , secret, n] of ROUTES) {
      const without = await req(w.url + path, { body, headers });
      assert.equal(without.status, 401, path);
      if (secret === 'NOTIFY_SECRET' && path === '/hooks/notifications')
        assert.match(without.json.error, /closed until NOTIFY_SECRET is set/);
      else assert.equal(without.json.error, 'missing or wrong credentials', path);
      const wrong = await req(w.url + path, { body, headers: { ...headers, authorization: 'Bearer hook-t0keN' } });
      assert.equal(wrong.status, 401, path);
      const right = await req(w.url + path, { body, headers: { ...headers, ...bearer } });
      if (path === '/hooks/notifications') assert.equal(right.status, 401, 'a bearer token does not open the Notifications route');
      else assert.deepEqual([right.status, right.json.accepted], [200, n], `${path}: ${right.text}`);
    }
    assert.equal((await status(w)).auth.routes.notifications, 'closed');
    assert.equal((await status(w)).auth.routes.logpush, 'secret');
  } finally { await w.dispose(); }
});

test('ALLOW_UNAUTHENTICATED keeps the routes it names open: accepted, and flagged in /v1/status, /healthz and each log line', async () => {
  const w = await worker({ ALLOW_UNAUTHENTICATED: 'notifications, Logpush,,bogus' });
  try {
    for (const [path, body, headers, name, secret, n] of ROUTES) {
      const r = await req(w.url + path, { body, headers });
      if (name === 'generic') {
        assert.equal(r.status, 401, 'a route it does not name stays closed');
        assert.match(r.json.error, /closed until HOOK_TOKEN is set/);
        continue;
      }
      assert.equal(r.status, 200, `${path}: ${r.text}`);
      assert.equal(r.json.accepted, n, path);
      const line = w.lines.at(-1);
      assert.deepEqual(line, { level: 'warn', msg: 'request accepted without authentication', status: 200, path: new URL(path, w.url).pathname, unauthenticated: name, allowedBy: 'ALLOW_UNAUTHENTICATED', set: secret });
    }
    // A bad request to an open route: its log line says the route is open too.
    const bad = await req(w.url + '/hooks/notifications', { body: '{"a":', headers: J });
    assert.equal(bad.status, 400);
    assert.deepEqual([w.lines.at(-1).msg, w.lines.at(-1).status, w.lines.at(-1).unauthenticated], ['request rejected', 400, 'notifications']);
    const closed = w.lines.find((l) => l.path === '/hooks/generic/deploy');
    assert.equal(closed.status, 401);
    assert.ok(!('unauthenticated' in closed), 'a closed route is not flagged open');

    const st = await status(w);
    assert.equal(st.events, 12);
    assert.deepEqual(st.auth, {
      routes: { notifications: 'open', logpush: 'open', generic: 'closed' },
      unauthenticated: ['notifications', 'logpush'],
      ignored: ['bogus'],
    });
    assert.deepEqual((await req(w.url + '/healthz', { method: 'GET' })).json, { ok: true, unauthenticated: ['notifications', 'logpush'] });
    assert.deepEqual((await req(w.url + '/health', { method: 'GET' })).json, { ok: true, unauthenticated: ['notifications', 'logpush'] });
    // The pull API stays closed to anyone without PULL_TOKEN.
    assert.equal((await req(w.url + '/v1/events?after=0', { method: 'GET' })).status, 401);
  } finally { await w.dispose(); }
});

test('a set secret wins over ALLOW_UNAUTHENTICATED: the route needs it, and the opt-in is reported as ignored', async () => {
  const w = await worker({ NOTIFY_SECRET: 'notify-s3cret', HOOK_TOKEN: 'hook-t0ken', ALLOW_UNAUTHENTICATED: 'notifications,logpush,generic' });
  try {
    for (const [path, body, headers] of ROUTES) {
      const r = await req(w.url + path, { body, headers });
      assert.equal(r.status, 401, path);
      assert.equal(r.json.error, 'missing or wrong credentials');
    }
    const ok = await req(w.url + '/hooks/notifications', { body: fixture('ddos-l7.json'), headers: { ...J, 'cf-webhook-auth': 'notify-s3cret' } });
    assert.equal(ok.status, 200);
    assert.ok(!w.lines.some((l) => 'unauthenticated' in l), 'no request was taken without authentication');
    const st = await status(w);
    assert.deepEqual(st.auth, {
      routes: { notifications: 'secret', logpush: 'secret', generic: 'secret' },
      unauthenticated: [],
      ignored: ['notifications', 'logpush', 'generic'],
    });
    assert.deepEqual((await req(w.url + '/healthz', { method: 'GET' })).json, { ok: true, unauthenticated: [] });
  } finally { await w.dispose(); }
});
