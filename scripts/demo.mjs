// The first-five-minutes demo: the Worker running locally in workerd, `synccf
// run` following it with a task-cache rule on an example Taskfile project,
// Cloudflare's payloads replayed into the Worker, and the events, the
// invalidated go-task files and `synccf status` shown as they happen.
// Before the events, `synccf cloudflare setup` wires a stand-in for
// Cloudflare's API (tests/integration/fakecf.mjs; no account needed).
// Ctrl-C stops everything; nothing is left running.
import { spawn, execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, existsSync, rmSync, readdirSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startWorker } from '../worker/test/helpers.mjs';
import { startFakeCloudflare } from '../tests/integration/fakecf.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'build', 'synccf');
const FIX = join(ROOT, 'tests', 'vectors', 'inputs');
const work = mkdtempSync(join(tmpdir(), 'synccf-demo-'));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const say = (s = '') => process.stdout.write(s + '\n');
let worker, daemon, fakeApi, stopping = false;

async function cleanup(code) {
  if (stopping) return;
  stopping = true;
  if (daemon && daemon.exitCode === null) { daemon.kill('SIGTERM'); await new Promise((r) => daemon.once('exit', r)); }
  if (worker) await worker.dispose();
  if (fakeApi) await fakeApi.close();
  rmSync(work, { recursive: true, force: true });
  process.exit(code);
}
process.on('SIGINT', () => { say('\nstopping...'); cleanup(130); });
process.on('SIGTERM', () => cleanup(143));

// An example Taskfile project with go-task's cache laid out as go-task writes it.
const project = join(work, 'marketing-site');
const remoteKey = (url) => {
  const u = new URL(url), parts = u.pathname.split('/').filter(Boolean), file = parts.pop(), dir = parts.pop();
  return ['http', u.host, ...(dir ? [dir] : []), file, createHash('sha256').update(url).digest('hex')].join('.');
};
mkdirSync(join(project, '.task', 'checksum'), { recursive: true });
mkdirSync(join(project, '.task', 'remote'), { recursive: true });
writeFileSync(join(project, 'Taskfile.yml'), 'version: "3"\nincludes:\n  shared: https://marketing-site.pages.dev/taskfiles/Taskfile.yml\ntasks:\n  build:\n    sources: ["src/**"]\n    cmds: ["echo building"]\n');
for (const t of ['build', 'deploy', 'lint']) writeFileSync(join(project, '.task', 'checksum', t), 'fingerprint');
for (const url of ['https://marketing-site.pages.dev/taskfiles/Taskfile.yml', 'https://docs.example.com/shared/Taskfile.yml'])
  for (const ext of ['yaml', 'timestamp', 'checksum']) writeFileSync(join(project, '.task', 'remote', `${remoteKey(url)}.${ext}`), ext);
const cacheFiles = () => readdirSync(join(project, '.task'), { recursive: true }).map(String).filter((f) => f.includes('/')).sort();

const PULL_TOKEN = 'demo-pull-token', NOTIFY_SECRET = 'demo-notify-secret', HOOK_TOKEN = 'demo-hook-token';
worker = await startWorker({ bindings: { PULL_TOKEN, NOTIFY_SECRET, HOOK_TOKEN, HEARTBEAT_SECONDS: '5' } });
const cfg = join(work, 'synccf.yaml');
writeFileSync(cfg, `mode: worker
worker_url: ${worker.url}
heartbeat: 5s
listen: 127.0.0.1:0
handlers:
  - name: site-cache
    match:
      type: com.cloudflare.pages.deployment.success
      subject: marketing-site
    task_cache:
      dir: ${project}
      tasks: [build, deploy]
cloudflare:
  logpush:
    - dataset: http_requests
      zone_id: 023e105f4ecef8ad9ca31a8372d0c353
`);
const state = join(work, 'state');
daemon = spawn(BIN, ['--config', cfg, '--state', state, '--log-level', 'error', 'run'], { env: { ...process.env, SYNCCF_PULL_TOKEN: PULL_TOKEN }, stdio: ['ignore', 'inherit', 'inherit'] });
daemon.on('exit', (c) => { if (!stopping) { say(`synccf exited (${c})`); cleanup(1); } });

say('synccf demo');
say(`  the Worker, in workerd:        ${worker.url}`);
say(`  synccf run (mode worker):      following it, store ${state}/state.db`);
say(`  example Taskfile project:      ${project}`);
say('  go-task cache before:');
for (const f of cacheFiles()) say(`    .task/${f}`);
say();
// The wiring step: Cloudflare told to send what the handlers need.
fakeApi = await startFakeCloudflare();
fakeApi.pages['marketing-site'] = [];
const cfEnv = { ...process.env, CLOUDFLARE_API_TOKEN: fakeApi.token, CLOUDFLARE_ACCOUNT_ID: fakeApi.account, CLOUDFLARE_API_BASE_URL: fakeApi.url,
  SYNCCF_NOTIFY_SECRET: NOTIFY_SECRET, SYNCCF_HOOK_TOKEN: HOOK_TOKEN };
const synccfCloudflare = (...args) => new Promise((resolve) =>
  execFile(BIN, ['--config', cfg, 'cloudflare', ...args], { env: cfEnv }, (e, out, err) => resolve((out + err).trimEnd())));
say('synccf cloudflare setup (against a stand-in for Cloudflare\'s API):');
say((await synccfCloudflare('setup')).replace(/^/gm, '  '));
say('synccf cloudflare check:');
say((await synccfCloudflare('check')).replace(/^/gm, '  '));
say();
say('Cloudflare sends its events to the Worker, as the created destination and job deliver them:');
const dest = fakeApi.webhooks[0], job = Object.values(fakeApi.jobs).flat()[0];
const notify = { 'content-type': 'application/json', 'cf-webhook-auth': dest.secret };
const logpushAuth = { authorization: new URL(job.destination_conf).searchParams.get('header_Authorization') };
const post = async (label, path, file, headers = {}) => {
  const res = await fetch(worker.url + path, { method: 'POST', body: readFileSync(join(FIX, file)), headers });
  say(`  ${label.padEnd(44)} -> ${res.status} ${await res.text()}`);
};
await post('Pages deployment succeeded (Notifications)', '/hooks/notifications', 'pages-deployment-success.json', notify);
await post('L7 DDoS alert (Notifications)', '/hooks/notifications', 'ddos-l7.json', notify);
await post('Logpush batch, gzip, 4 records', new URL(job.destination_conf).pathname, 'http_requests.ndjson.gz', logpushAuth);
await post('the same Pages alert again (a retry)', '/hooks/notifications', 'pages-deployment-success.json', notify);

const count = () => { try { return JSON.parse(execFileSync(BIN, ['--state', state, 'status', '--json'], { encoding: 'utf8' })).events.total; } catch { return 0; } };
for (let i = 0; i < 100 && count() < 6; i++) await sleep(100);
await sleep(500);
say();
say('synccf pulled them from the Worker and ran the handlers:');
say(execFileSync(BIN, ['--state', state, 'events', 'list'], { encoding: 'utf8' }).trimEnd().replace(/^/gm, '  '));
say();
say('go-task cache after (the deployed project\'s remote Taskfile and the build/deploy fingerprints are gone):');
for (const f of cacheFiles()) say(`    .task/${f}`);
say();
say(execFileSync(BIN, ['--state', state, 'events', 'show', 'pages-3b6c1f0e-2a4d-4c5e-8f9a-b0c1d2e3f4a5-success'], { encoding: 'utf8' }).split('handler runs')[1]?.trimEnd().replace(/^/, 'handler runs') ?? '');
say();
say('synccf status:');
say(execFileSync(BIN, ['--state', state, 'status'], { encoding: 'utf8' }).trimEnd().replace(/^/gm, '  '));
say();
const ok = count() === 6 && !existsSync(join(project, '.task', 'checksum', 'build'));
say(ok ? 'Events flowed: Cloudflare → Worker → synccf pull → store (once each) → task-cache invalidation.' : 'Something did not arrive: see the output above.');
if (process.env.DEMO_WAIT) { say('Running; Ctrl-C to stop.'); await new Promise(() => {}); }
await cleanup(ok ? 0 : 1);
