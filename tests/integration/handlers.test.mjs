// Handlers end to end: events posted to the real daemon invalidate exactly the
// go-task cache files their rules name, run commands with retries and
// timeouts, survive SIGKILL, and cannot be steered by crafted event data.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync, readFileSync, existsSync, readdirSync, chmodSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { startDaemon, post, cli, tempDir, VECTORS, until, sleep } from './lib.mjs';

const json = { 'content-type': 'application/json' };
const pagesSuccess = readFileSync(join(VECTORS, 'inputs', 'pages-deployment-success.json'));

async function runsOf(state, id) {
  return JSON.parse(await cli(state, 'events', 'show', id, '--json')).runs;
}

// go-task's cache key for a remote Taskfile: http.<host>.<lastdir>.<file>.<sha256(url)>
function remoteKey(url) {
  const u = new URL(url);
  const parts = u.pathname.split('/').filter(Boolean);
  const file = parts.pop();
  const dir = parts.pop();
  const sha = createHash('sha256').update(url).digest('hex');
  return ['http', u.hostname, ...(dir ? [dir] : []), file, sha].join('.');
}

function taskfileProject() {
  const dir = tempDir('synccf-taskfile-');
  const remote = join(dir, '.task', 'remote');
  const checksum = join(dir, '.task', 'checksum');
  mkdirSync(remote, { recursive: true });
  mkdirSync(checksum, { recursive: true });
  const urls = [
    'https://marketing-site.pages.dev/taskfiles/Taskfile.yml',
    'https://3b6c1f0e.marketing-site.pages.dev/ci/Taskfile.yml',
    'https://docs.example.com/shared/Taskfile.yml',
    'https://other.pages.dev/Taskfile.yml',
  ];
  const keys = urls.map(remoteKey);
  // The Taskfile includes them all: the handler removes them by exact key.
  writeFileSync(join(dir, 'Taskfile.yml'), 'version: "3"\nincludes:\n' +
    urls.map((u, i) => `  inc${i}: ${u}\n`).join('') + 'tasks:\n  build:\n    cmds: [echo build]\n');
  for (const k of keys) for (const ext of ['yaml', 'timestamp', 'checksum']) writeFileSync(join(remote, `${k}.${ext}`), ext);
  for (const t of ['build', 'deploy-prod', 'lint']) writeFileSync(join(checksum, t), 'fingerprint');
  return { dir, remote, checksum, keys };
}

function listAll(dir) {
  return readdirSync(dir, { recursive: true }).map(String).sort();
}

test('a Pages deployment invalidates exactly what the rules name, once', async () => {
  const p = taskfileProject();
  const cfgDir = tempDir();
  const cfg = join(cfgDir, 'synccf.yaml');
  writeFileSync(cfg, `
handlers:
  - name: site-cache
    match:
      type: com.cloudflare.pages.deployment.success
      subject: marketing-site
      data:
        data.environment: ENVIRONMENT_PRODUCTION
    task_cache:
      dir: ${p.dir}
      hosts: [docs.example.com]
      tasks: [build, "deploy:prod"]
  - name: never
    match: { type: com.cloudflare.pages.deployment.failed }
    task_cache: { dir: ${p.dir}, all_tasks: true, remote_all: true }
`);
  const before = listAll(join(p.dir, '.task'));
  const d = await startDaemon({ args: ['--config', cfg] });
  try {
    const res = await post(d.url + '/hooks/notifications', pagesSuccess, json);
    assert.equal(res.status, 200, res.text);
    const id = 'pages-3b6c1f0e-2a4d-4c5e-8f9a-b0c1d2e3f4a5-success';
    const runs = await until('the run to finish', async () => {
      const r = await runsOf(d.state, id);
      return r.length && r.every((x) => x.state !== 'pending') && r;
    });
    assert.equal(runs.length, 1, 'only the matching handler runs');
    assert.equal(runs[0].handler, 'site-cache');
    assert.equal(runs[0].state, 'ok', JSON.stringify(runs[0]));
    assert.equal(runs[0].detail.remote, 'exact', 'keys computed from the Taskfile\'s includes');

    const removed = before.filter((f) => !existsSync(join(p.dir, '.task', f)));
    const expected = [
      ...p.keys.slice(0, 3).flatMap((k) => [`remote/${k}.yaml`, `remote/${k}.timestamp`]),
      'checksum/build', 'checksum/deploy-prod',
    ].sort();
    assert.deepEqual(removed.sort(), expected, 'removed exactly these');
    for (const k of p.keys) assert.ok(existsSync(join(p.remote, `${k}.checksum`)), 'trust decisions kept');
    assert.ok(existsSync(join(p.remote, `${p.keys[3]}.yaml`)), 'other project untouched');
    assert.ok(existsSync(join(p.checksum, 'lint')), 'unnamed task untouched');
    assert.deepEqual([...runs[0].detail.removed].map((f) => f.replace(p.dir + '/.task/', '')).sort(), expected);

    // The same notification again: a duplicate, no new run, nothing touched.
    const after1 = listAll(join(p.dir, '.task'));
    const again = await post(d.url + '/hooks/notifications', pagesSuccess, json);
    assert.deepEqual(again.json, { accepted: 0, duplicates: 1 });
    await sleep(500);
    assert.deepEqual(listAll(join(p.dir, '.task')), after1);
    assert.equal((await runsOf(d.state, id)).length, 1);

    // replay runs it again; idempotent, it now removes nothing.
    assert.match(await cli(d.state, 'replay', id), /1 handler run queued/);
    const replayed = await until('the replay', async () => {
      const [r] = await runsOf(d.state, id);
      return r.state === 'ok' && r.detail.removed.length === 0 && r;
    });
    assert.equal(replayed.attempts, 1);
  } finally { await d.stop(); }
});

function script(dir, name, body) {
  const f = join(dir, name);
  writeFileSync(f, `#!/bin/sh\n${body}\n`);
  chmodSync(f, 0o755);
  return f;
}

test('exec: retried until it succeeds; a hung command is killed at its timeout', async () => {
  const dir = tempDir();
  const flaky = script(dir, 'flaky.sh', `n=$(cat ${dir}/count 2>/dev/null || echo 0); n=$((n+1)); echo $n > ${dir}/count; cat > ${dir}/stdin-$n; echo "attempt $n"; [ $n -ge 3 ]`);
  const hang = script(dir, 'hang.sh', 'sleep 1000');
  const cfg = join(dir, 'synccf.yaml');
  writeFileSync(cfg, `
dispatch: { backoff: 100ms, max_backoff: 400ms, max_attempts: 5 }
handlers:
  - name: flaky
    match: { type: "dev.synccf.hook.flaky" }
    exec: { argv: [${flaky}], timeout: 5s }
  - name: hang
    match: { type: "dev.synccf.hook.hang" }
    exec: { argv: [${hang}], timeout: 300ms }
`);
  const d = await startDaemon({ args: ['--config', cfg] });
  try {
    const body = JSON.stringify({ id: 'flaky-1', subject: 'app' });
    assert.equal((await post(d.url + '/hooks/generic/flaky', body, json)).status, 200);
    const id = JSON.parse(await cli(d.state, 'events', 'list', '--json', '--type', 'dev.synccf.hook.flaky')).id;
    const [run] = await until('flaky to succeed', async () => {
      const r = await runsOf(d.state, id);
      return r[0]?.state === 'ok' && r;
    });
    assert.equal(run.attempts, 3);
    assert.match(run.detail.output, /attempt 3/);
    // The log names the event by its id (from the store's row) on each outcome.
    const esc = id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    assert.match(d.log, new RegExp(`msg="handler failed, will retry" event="?${esc}"? handler=flaky attempt=1 `));
    assert.match(d.log, new RegExp(`msg="handler ok" event="?${esc}"? handler=flaky attempt=3 `));
    const stored = JSON.parse(await cli(d.state, 'events', 'show', id, '--json')).event;
    assert.equal(readFileSync(join(dir, 'stdin-1'), 'utf8'), JSON.stringify(stored), 'the event JSON on stdin');

    assert.equal((await post(d.url + '/hooks/generic/hang', '{"id":"hang-1"}', json)).status, 200);
    const hid = JSON.parse(await cli(d.state, 'events', 'list', '--json', '--type', 'dev.synccf.hook.hang')).id;
    const [h] = await until('the hung command to be killed', async () => {
      const r = await runsOf(d.state, hid);
      return r[0]?.attempts >= 1 && r;
    });
    assert.equal(h.detail?.timed_out, true, JSON.stringify(h));
    assert.match(h.last_error, /timed out/);
    const st = JSON.parse(await cli(d.state, 'status', '--json'));
    assert.ok(st.handlers.failing.some((f) => f.handler === 'hang'), 'status shows the failing run');
  } finally { await d.stop(); }
});

test('crafted event data cannot reach a shell or leave the .task directory', async () => {
  const p = taskfileProject();
  const dir = tempDir();
  const canary = join(dir, 'pwned');
  const outside = join(p.dir, 'keep-me');
  writeFileSync(outside, 'x');
  const record = script(dir, 'record.sh', `env | grep ^SYNCCF_EVENT_ > ${dir}/env.txt`);
  const cfg = join(dir, 'synccf.yaml');
  writeFileSync(cfg, `
handlers:
  - name: record
    match: { type: "dev.synccf.hook.*" }
    exec: { argv: [${record}] }
  - name: cache
    match: { type: "com.cloudflare.pages.deployment.*" }
    task_cache: { dir: ${p.dir}, tasks: [build] }
`);
  const d = await startDaemon({ args: ['--config', cfg] });
  try {
    const evil = `$(touch ${canary}); \`touch ${canary}\` ; touch ${canary}`;
    await post(d.url + '/hooks/generic/evil', JSON.stringify({ id: 'evil-1', subject: evil, data: evil }), json);
    const pages = JSON.parse(pagesSuccess);
    pages.data.project_name = '../../keep-me';
    pages.data.deployment_id = 'evil-deploy';
    await post(d.url + '/hooks/notifications', JSON.stringify(pages), json);
    await until('both runs', async () => {
      const ids = (await cli(d.state, 'events', 'list', '--json')).trim().split('\n').map((l) => JSON.parse(l).id);
      const runs = (await Promise.all(ids.map((i) => runsOf(d.state, i)))).flat();
      return runs.length === 2 && runs.every((r) => r.state === 'ok') && runs;
    });
    assert.ok(!existsSync(canary), 'no shell ran the event data');
    assert.ok(existsSync(outside), 'nothing outside .task was touched');
    assert.ok(readFileSync(join(dir, 'env.txt'), 'utf8').includes(`SYNCCF_EVENT_SUBJECT=${evil}`), 'the subject arrives verbatim');
  } finally { await d.stop(); }
});

test('handlers pending at SIGKILL run after restart; ok outcomes are not repeated', async () => {
  const dir = tempDir();
  const log = join(dir, 'ran.log');
  const slow = script(dir, 'slow.sh', `echo "$SYNCCF_EVENT_ID" >> ${log}; sleep 0.2`);
  const cfg = join(dir, 'synccf.yaml');
  writeFileSync(cfg, `
dispatch: { concurrency: 2 }
handlers:
  - name: slow
    match: { type: "dev.synccf.hook.crash" }
    exec: { argv: [${slow}], timeout: 10s }
`);
  const state = tempDir();
  const d = await startDaemon({ state, args: ['--config', cfg] });
  const ids = [];
  for (let i = 0; i < 12; i++) {
    const res = await post(d.url + '/hooks/generic/crash', JSON.stringify({ id: `c-${i}`, subject: `s-${i % 4}` }), json);
    assert.equal(res.status, 200);
  }
  await sleep(500);
  d.child.kill('SIGKILL');
  await d.exited;
  for (const l of (await cli(state, 'events', 'list', '--json')).trim().split('\n')) ids.push(JSON.parse(l).id);
  const okBefore = new Set();
  for (const id of ids) if ((await runsOf(state, id))[0].state === 'ok') okBefore.add(id);
  assert.ok(okBefore.size < ids.length, 'some runs were still pending at the kill');

  const d2 = await startDaemon({ state, args: ['--config', cfg] });
  try {
    await until('every run to finish', async () => {
      const runs = await Promise.all(ids.map((i) => runsOf(state, i)));
      return runs.every((r) => r[0].state === 'ok');
    }, 30000);
    const ran = readFileSync(log, 'utf8').trim().split('\n');
    for (const id of ids) {
      const n = ran.filter((x) => x === id).length;
      assert.ok(n >= 1, `${id} ran`);
      if (okBefore.has(id)) assert.equal(n, 1, `${id} was ok before the kill and ran once`);
    }
  } finally { await d2.stop(); }
});

test('a bad config file is a usage error naming the file, line and key', async () => {
  const dir = tempDir();
  const cases = [
    ['handlers:\n  - name: x\n    match: { type: a }\n    exec: { argv: [/bin/true], timeout: soon }\n', /synccf\.yaml:4: key 'timeout'/],
    ['listen: 127.0.0.1:0\nbogus: 1\n', /synccf\.yaml:2: key 'bogus': unknown key/],
    ['handlers:\n  - name: x\n    task_cache: { dir: relative/path }\n', /synccf\.yaml:3: key 'dir'/],
    ['mode: sideways\n', /synccf\.yaml:1: key 'mode'/],
  ];
  for (const [text, re] of cases) {
    const f = join(dir, 'synccf.yaml');
    writeFileSync(f, text);
    await assert.rejects(startDaemon({ args: ['--config', f] }), (e) => { assert.match(e.message, re); assert.match(e.message, /exited 2/); return true; });
  }
});

test('the C API: an embedded handler registered with synccf_on_event', async () => {
  const { spawn } = await import('node:child_process');
  const { ROOT } = await import('./lib.mjs');
  const bin = join(ROOT, process.env.SYNCCF_BIN ? 'build-asan' : 'build', 'examples', 'on_event');
  const child = spawn(bin, ['--state', tempDir(), '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (b) => { out += b; });
  try {
    const port = await until('the example to listen', async () => /listening on port (\d+)/.exec(out)?.[1]);
    const res = await post(`http://127.0.0.1:${port}/hooks/notifications`, pagesSuccess, json);
    assert.equal(res.status, 200);
    await until('the callback', async () => out.includes('deployment event: {"specversion":"1.0","id":"pages-3b6c1f0e'));
  } finally {
    child.kill('SIGTERM');
    const code = await new Promise((r) => child.on('exit', r));
    assert.equal(code, 0);
  }
});
