// synccf tunnel with a stand-in cloudflared that prints what a quick tunnel
// prints and crashes on cue: the URL is found and announced, the
// Notifications destination follows it, cloudflared is restarted after a
// crash and stopped with synccf, and a missing binary is a clear error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync, existsSync, chmodSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BIN, tempDir } from './lib.mjs';
import { startFakeCloudflare } from './fakecf.mjs';
import { until } from '../../worker/test/helpers.mjs';

const STANDIN = join(dirname(fileURLToPath(import.meta.url)), 'standin', 'cloudflared');

// synccf gives cloudflared only a few variables of its environment, so the
// stand-in's settings travel in a wrapper script.
function standin(dir, exitAfter = '') {
  const path = join(dir, 'cloudflared');
  writeFileSync(path, `#!/bin/sh\nSTANDIN_DIR='${dir}' STANDIN_EXIT_AFTER='${exitAfter}' exec '${STANDIN}' "$@"\n`);
  chmodSync(path, 0o755);
  return path;
}

function startTunnel(args, env) {
  const child = spawn(BIN, ['--state', tempDir(), 'tunnel', '--listen', '127.0.0.1:0', ...args], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const t = { child, out: '', err: '' };
  child.stdout.on('data', (d) => { t.out += d; });
  child.stderr.on('data', (d) => { t.err += d; });
  t.exited = new Promise((r) => child.on('exit', (code) => r(code)));
  return t;
}

const alive = (pid) => { try { process.kill(pid, 0); return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z '); } catch { return false; } };

test('quick tunnel: URL announced, destination updated, restarted after a crash, stopped with synccf', async () => {
  const dir = tempDir();
  const cf = await startFakeCloudflare();
  const cfg = join(dir, 'synccf.yaml');
  writeFileSync(cfg, 'notify_webhook_id: dest-1\n');
  const t = startTunnel(['--config', cfg, '--cloudflared', standin(dir, '1')], {
    SYNCCF_NOTIFY_SECRET: 'ns', SYNCCF_PUSH_SECRET: 'whsec_c2VjcmV0c2VjcmV0', SYNCCF_HOOK_TOKEN: 'ht',
    CLOUDFLARE_API_TOKEN: cf.token, CLOUDFLARE_ACCOUNT_ID: cf.account, CLOUDFLARE_API_BASE_URL: cf.url,
  });
  try {
    await until('the first URL', () => /public URL: https:\/\/standin-words-1\.trycloudflare\.com/.test(t.out));
    assert.match(t.out, /Notifications webhook: https:\/\/standin-words-1\.trycloudflare\.com\/hooks\/notifications/);
    await until('the destination updated', () => cf.destinations?.['dest-1']);
    assert.deepEqual(cf.destinations['dest-1'], { name: 'synccf', url: 'https://standin-words-1.trycloudflare.com/hooks/notifications', secret: 'ns' });
    // The stand-in crashes after a second: restarted, with a new URL that the destination follows.
    await until('the restart', () => /standin-words-2\.trycloudflare\.com/.test(t.out), 10000);
    await until('the destination following', () => cf.destinations['dest-1'].url.includes('standin-words-2'));
    assert.match(t.err, /cloudflared exited; restarting/);
    const starts = readFileSync(join(dir, 'starts'), 'utf8').trim().split('\n');
    assert.equal(starts.length, 2);
    assert.match(starts[0], /tunnel --url http:\/\/127\.0\.0\.1:\d+ --no-autoupdate/);
    const pid = Number(starts[1].split(' ')[0]);
    assert.ok(alive(pid));
    t.child.kill('SIGTERM');
    assert.equal(await t.exited, 0);
    await until('cloudflared stopped', () => !alive(pid));
  } finally { t.child.kill('SIGKILL'); await cf.close(); }
});

test('named tunnel: the token in cloudflared\'s environment only, no other secret; connected; restarted after a crash', async () => {
  const dir = tempDir();
  const state = tempDir();
  const token = 'eyJhIjoiNWFiNGU5Z-standin-tunnel-token';
  const secrets = { SYNCCF_PUSH_SECRET: 'whsec_c2VjcmV0c2VjcmV0', SYNCCF_NOTIFY_SECRET: 'notify-secret-x', SYNCCF_HOOK_TOKEN: 'hook-token-x', CLOUDFLARE_API_TOKEN: 'api-token-x' };
  const child = spawn(BIN, ['--state', state, 'tunnel', '--listen', '127.0.0.1:0', '--cloudflared', standin(dir, '1')], {
    env: { PATH: process.env.PATH, HOME: dir, HTTPS_PROXY: 'http://proxy.example:3128', SYNCCF_TUNNEL_TOKEN: token, SYNCCF_STRAY: 'stray', ...secrets },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d) => { err += d; });
  const exited = new Promise((r) => child.on('exit', (code) => r(code)));
  try {
    await until('connected', () => /named tunnel connected/.test(err), 10000);
    const starts = () => readFileSync(join(dir, 'starts'), 'utf8').trim().split('\n');
    assert.match(starts()[0], /^\d+ tunnel --no-autoupdate run$/, 'no token on the command line');
    const env1 = readFileSync(join(dir, 'env-1'), 'utf8');
    assert.match(env1, new RegExp(`^TUNNEL_TOKEN=${token}$`, 'm'));
    assert.match(env1, /^HTTPS_PROXY=http:\/\/proxy\.example:3128$/m, 'proxy settings pass through');
    for (const [k, v] of Object.entries(secrets)) {
      assert.ok(!env1.includes(k) && !env1.includes(v), `${k} kept from cloudflared`);
    }
    assert.ok(!env1.includes('SYNCCF_STRAY'), 'nothing else of synccf\'s environment');
    assert.ok(!err.includes(token), 'the token is never logged');
    // It crashes after a second: restarted, connected again.
    await until('the restart', () => starts().length === 2, 10000);
    assert.match(err, /cloudflared exited; restarting/);
    await until('connected again', () => (err.match(/named tunnel connected/g) || []).length === 2, 10000);
    const pid = Number(starts()[1].split(' ')[0]);
    assert.ok(alive(pid));
    // Source states reach the store with the writer's next group commit, a
    // moment after the log line: wait for it rather than race it.
    const st = await until('connected in status', () => {
      const s = JSON.parse(spawnSync(BIN, ['--state', state, 'status', '--json'], { encoding: 'utf8' }).stdout);
      return s.sources?.tunnel?.state === 'connected' && s.sources.tunnel.starts === 2 && s;
    }, 10000);
    assert.ok(!JSON.stringify(st).includes(token));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    await until('cloudflared stopped', () => !alive(pid));
  } finally { child.kill('SIGKILL'); }
});

// cloudflared connects from 127.0.0.1 but forwards the internet's requests:
// behind it the receiver is public, whatever address it listens on.
test('behind a tunnel every route needs its secret; the page and metrics are never served through Cloudflare', async () => {
  const dir = tempDir();
  const secrets = { SYNCCF_PUSH_SECRET: 'whsec_c2VjcmV0c2VjcmV0', SYNCCF_NOTIFY_SECRET: 'ns', SYNCCF_HOOK_TOKEN: 'ht' };
  for (const missing of Object.keys(secrets)) {
    const env = { PATH: process.env.PATH, ...secrets };
    delete env[missing];
    const r = spawnSync(BIN, ['--state', tempDir(), 'tunnel', '--listen', '127.0.0.1:0', '--cloudflared', standin(dir)], { encoding: 'utf8', timeout: 10000, env });
    assert.equal(r.status, 2, `without ${missing}: ${r.stderr}`);
    assert.match(r.stderr, /refusing to serve through a tunnel .*without authentication on every route; set /);
    assert.doesNotMatch(r.stderr, /route open without authentication/);
  }
  assert.ok(!existsSync(join(dir, 'starts')), 'cloudflared never started');
  // run in mode tunnel with cloudflared set says the same.
  const cfg = join(dir, 'tunnel.yaml');
  writeFileSync(cfg, `mode: tunnel\ncloudflared: ${standin(dir)}\n`);
  const r = spawnSync(BIN, ['--state', tempDir(), '--config', cfg, 'run', '--listen', '127.0.0.1:0'], { encoding: 'utf8', timeout: 10000, env: { PATH: process.env.PATH } });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /refusing to serve through a tunnel/);

  const t = startTunnel(['--cloudflared', standin(dir)], secrets);
  try {
    await until('listening', () => /msg=listening/.test(t.err), 10000);
    const port = /port=(\d+)/.exec(t.err)[1];
    const get = (path, headers = {}) => fetch(`http://127.0.0.1:${port}${path}`, { headers });
    assert.equal((await get('/')).status, 200, 'a local browser still sees the page');
    assert.equal((await get('/metrics')).status, 200);
    for (const h of [{ 'Cf-Connecting-IP': '203.0.113.9' }, { 'cf-ray': '8f00aa11bb22cc33-AMS' }]) {
      for (const path of ['/', '/metrics']) {
        const res = await get(path, h);
        assert.equal(res.status, 404, `${path} ${JSON.stringify(h)}`);
        assert.doesNotMatch(await res.text(), /synccf_events_stored_total|<html/i);
      }
    }
    assert.equal((await get('/healthz', { 'Cf-Ray': 'x' })).status, 200);
    t.child.kill('SIGTERM');
    assert.equal(await t.exited, 0);
  } finally { t.child.kill('SIGKILL'); }
});

test('a missing cloudflared is a clear error saying how to install it', () => {
  const secrets = { SYNCCF_PUSH_SECRET: 'whsec_c2VjcmV0c2VjcmV0', SYNCCF_NOTIFY_SECRET: 'ns', SYNCCF_HOOK_TOKEN: 'ht' };
  const r = spawnSync(BIN, ['--state', tempDir(), 'tunnel', '--listen', '127.0.0.1:0', '--cloudflared', '/nonexistent/cloudflared'], { encoding: 'utf8', timeout: 10000, env: { PATH: process.env.PATH, ...secrets } });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /cannot find cloudflared/);
  assert.match(r.stderr, /developers\.cloudflare\.com/);
  const r2 = spawnSync(BIN, ['--state', tempDir(), 'tunnel', '--listen', '127.0.0.1:0'], { encoding: 'utf8', timeout: 10000, env: { PATH: '/nonexistent', ...secrets } });
  assert.equal(r2.status, 1);
  assert.match(r2.stderr, /cannot find cloudflared \(cloudflared\)/);
  assert.ok(!existsSync('/nonexistent'));
});
