// The pinned wrangler (worker/package.json) runs from worker/node_modules
// without a Cloudflare login or a question on the terminal, bundles the
// Worker as `npm run deploy` would upload it (deploy --dry-run), and `npm run
// dev` serves it locally with its secrets from an env file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Miniflare } from 'miniflare';
import { WORKER_DIR, req, until } from './helpers.mjs';

const pkg = JSON.parse(readFileSync(join(WORKER_DIR, 'package.json'), 'utf8'));

// npx from worker/, as the docs say, with a HOME of its own (no login, no
// saved settings) and no terminal: a prompt would find its input closed.
const env = (home) => ({ ...process.env, HOME: home, XDG_CONFIG_HOME: join(home, '.config'), CLOUDFLARE_API_TOKEN: '', WRANGLER_SEND_METRICS: 'false' });
function npx(args, home) {
  return new Promise((resolve) => {
    const child = execFile('npx', ['--no-install', ...args], {
      cwd: WORKER_DIR,
      env: env(home),
      timeout: 120000,
    }, (err, stdout, stderr) => resolve({ code: err ? err.code ?? 1 : 0, stdout, stderr }));
    child.stdin.end();
  });
}

test('npx wrangler --version: the pinned wrangler, from worker/node_modules', async () => {
  const home = mkdtempSync(join(tmpdir(), 'synccf-wrangler-'));
  try {
    const r = await npx(['wrangler', '--version'], home);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim().split('\n').at(-1).trim(), pkg.devDependencies.wrangler);
  } finally { rmSync(home, { recursive: true, force: true }); }
});

test('wrangler deploy --dry-run bundles the Worker without a Cloudflare login; the bundle serves', async () => {
  const home = mkdtempSync(join(tmpdir(), 'synccf-wrangler-'));
  const out = join(home, 'out');
  let mf;
  try {
    const r = await npx(['wrangler', 'deploy', '--dry-run', '--outdir', out], home);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /env\.EVENT_LOG \(EventLog\)\s+Durable Object/);
    assert.match(r.stdout, /--dry-run: exiting now/);
    const bundle = readFileSync(join(out, 'index.js'), 'utf8');
    assert.match(bundle, /ALLOW_UNAUTHENTICATED/);
    // The bundle itself, run in workerd: its routes answer, closed by default.
    mf = new Miniflare({
      modules: true, modulesRoot: out, scriptPath: join(out, 'index.js'), compatibilityDate: '2025-09-01',
      durableObjects: { EVENT_LOG: { className: 'EventLog', useSQLite: true } },
      bindings: { PULL_TOKEN: 'p' },
    });
    const url = await mf.ready;
    const health = await mf.dispatchFetch(new URL('/healthz', url));
    assert.deepEqual(await health.json(), { ok: true, unauthenticated: [] });
    const closed = await mf.dispatchFetch(new URL('/hooks/generic/x', url), { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
    assert.equal(closed.status, 401);
    assert.match((await closed.json()).error, /HOOK_TOKEN/);
    const st = await mf.dispatchFetch(new URL('/v1/status', url), { headers: { authorization: 'Bearer p' } });
    assert.equal((await st.json()).events, 0);
  } finally {
    await mf?.dispose();
    rmSync(home, { recursive: true, force: true });
  }
});

const freePort = () => new Promise((resolve) => {
  const s = createServer().listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
});

test('npm run dev: wrangler dev serves the Worker locally, secrets from an env file, ingest closed without them', async () => {
  const home = mkdtempSync(join(tmpdir(), 'synccf-wrangler-'));
  const vars = join(home, '.dev.vars');
  writeFileSync(vars, 'NOTIFY_SECRET=dev-notify\nPULL_TOKEN=dev-pull\n');
  const [port, inspector] = [await freePort(), await freePort()];
  const dev = spawn('npm', ['run', 'dev', '--', '--ip', '127.0.0.1', '--port', String(port), '--inspector-port', String(inspector),
    '--persist-to', join(home, 'state'), '--env-file', vars, '--show-interactive-dev-session=false'],
  { cwd: WORKER_DIR, env: env(home), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let log = '';
  dev.stdout.on('data', (c) => { log += c; });
  dev.stderr.on('data', (c) => { log += c; });
  const exited = new Promise((r) => dev.once('exit', r));
  const url = `http://127.0.0.1:${port}`;
  try {
    await until('wrangler dev to serve', async () => {
      if (dev.exitCode !== null) throw new Error(`wrangler dev exited: ${log}`);
      try { return (await fetch(url + '/healthz')).ok; } catch { return false; }
    }, 90000);
    const body = readFileSync(join(WORKER_DIR, '..', 'tests', 'vectors', 'inputs', 'ddos-l7.json'));
    const J = { 'content-type': 'application/json' };
    const ok = await req(url + '/hooks/notifications', { body, headers: { ...J, 'cf-webhook-auth': 'dev-notify' } });
    assert.deepEqual([ok.status, ok.json.accepted], [200, 1], ok.text);
    const closed = await req(url + '/hooks/generic/x', { body: '{}', headers: J });
    assert.equal(closed.status, 401);
    assert.match(closed.json.error, /closed until HOOK_TOKEN is set/);
    const st = await req(url + '/v1/status', { method: 'GET', headers: { authorization: 'Bearer dev-pull' } });
    assert.equal(st.json.events, 1);
    assert.deepEqual(st.json.auth.routes, { notifications: 'secret', logpush: 'closed', generic: 'closed' });
  } finally {
    try { process.kill(-dev.pid, 'SIGTERM'); } catch { /* gone */ }
    await exited;
    rmSync(home, { recursive: true, force: true });
  }
});
