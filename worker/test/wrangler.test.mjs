// The pinned wrangler (worker/package.json) runs from worker/node_modules
// without a Cloudflare login or a question on the terminal, and bundles the
// Worker as `npm run deploy` would upload it (deploy --dry-run).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Miniflare } from 'miniflare';
import { WORKER_DIR } from './helpers.mjs';

const pkg = JSON.parse(readFileSync(join(WORKER_DIR, 'package.json'), 'utf8'));

// npx from worker/, as the docs say, with a HOME of its own (no login, no
// saved settings) and no terminal: a prompt would find its input closed.
function npx(args, home) {
  return new Promise((resolve) => {
    const child = execFile('npx', ['--no-install', ...args], {
      cwd: WORKER_DIR,
      env: { ...process.env, HOME: home, XDG_CONFIG_HOME: join(home, '.config'), CLOUDFLARE_API_TOKEN: '', WRANGLER_SEND_METRICS: 'false' },
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
