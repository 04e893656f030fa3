// Helpers for integration tests: start the real synccf binary on loopback with
// a fresh state directory, talk to it over HTTP, read its store with the CLI.
import { spawn, execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
// Outside oracles (tests/package.json): the CloudEvents SDK judges every
// stored event, the Standard Webhooks library signs what synccf verifies.
import { CloudEvent } from 'cloudevents';
import { Webhook } from 'standardwebhooks';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = process.env.SYNCCF_BIN ? resolve(ROOT, process.env.SYNCCF_BIN) : join(ROOT, 'build', 'synccf');
export const VECTORS = join(ROOT, 'tests', 'vectors');
const run = promisify(execFile);

export function tempDir(prefix = 'synccf-it-') {
  return mkdtempSync(join(tmpdir(), prefix));
}

// Starts `synccf receive` and resolves once it logs the port it listens on.
export async function startDaemon({ state = tempDir(), env = {}, args = [], listen = '127.0.0.1:0', command = 'receive' } = {}) {
  const child = spawn(BIN, ['--state', state, command, '--listen', listen, ...args], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`daemon did not start:\n${log}`)), 10000);
    child.stderr.on('data', (d) => {
      log += d;
      const m = /msg=listening .*port=(\d+)/.exec(log);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`daemon exited ${code}:\n${log}`)); });
  });
  const d = {
    child, state, port, url: `http://127.0.0.1:${port}`,
    get log() { return log; },
    exited: new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal }))),
    async stop(signal = 'SIGTERM') { child.kill(signal); return d.exited; },
  };
  return d;
}

// Starts `synccf <command>` (pull, queue, poll) and resolves once it has started.
export async function startSource(command, { state = tempDir(), env = {}, args = [] } = {}) {
  const child = spawn(BIN, ['--state', state, command, ...args], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr.on('data', (d) => { log += d; });
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${command} did not start:\n${log}`)), 10000);
    const check = () => { if (/msg=started/.test(log)) { clearTimeout(timer); resolve(); } };
    child.stderr.on('data', check);
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`${command} exited ${code}:\n${log}`)); });
  });
  const s = {
    child, state,
    get log() { return log; },
    exited: new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal }))),
    async stop(signal = 'SIGTERM') { child.kill(signal); return s.exited; },
  };
  return s;
}

export async function cli(state, ...args) {
  const { stdout } = await run(BIN, ['--state', state, ...args], { maxBuffer: 256 << 20 });
  return stdout;
}

export async function storedEvents(state, ...filter) {
  const out = await cli(state, 'events', 'list', '--json', '--limit', '1000000', ...filter);
  const events = out.split('\n').filter(Boolean).map((l) => JSON.parse(l));
  events.forEach(assertCloudEvent);
  return events;
}

// The cloudevents SDK's strict validation (it throws on any breach of
// CloudEvents 1.0 it knows), plus what it only checks on its way out: time
// must survive toJSON.
export function assertCloudEvent(e) {
  try {
    new CloudEvent(e, true).toJSON();
  } catch (err) {
    throw new Error(`stored event ${e?.id} is not a valid CloudEvent: ${err.message}\n${JSON.stringify(e)}`);
  }
}

export async function status(state) {
  return JSON.parse(await cli(state, 'status', '--json'));
}

export async function post(url, body, headers = {}) {
  const res = await fetch(url, { method: 'POST', body, headers });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, json, text, headers: res.headers };
}

// Standard Webhooks, as the Worker signs its pushes.
export function newSecret() { return 'whsec_' + randomBytes(24).toString('base64'); }
export function sign(secret, body, { id = 'msg_' + randomBytes(8).toString('hex'), ts = Math.floor(Date.now() / 1000) } = {}) {
  const sig = new Webhook(secret).sign(id, new Date(ts * 1000), Buffer.isBuffer(body) ? body : String(body)).slice('v1,'.length);
  return {
    'content-type': 'application/cloudevents-batch+json',
    'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': `v1,${sig}`,
  };
}

export function readVector(name) {
  const v = JSON.parse(readFileSync(join(VECTORS, name), 'utf8'));
  v.bytes = readFileSync(join(VECTORS, v.input));
  return v;
}

// The receive route of a vector, as a Cloudflare sender would use it.
export function vectorRoute(v) {
  switch (v.kind) {
    case 'notification': return { path: '/hooks/notifications', type: 'application/json' };
    case 'logpush': return { path: `/hooks/logpush/${v.dataset}`, type: 'application/json' };
    case 'generic': return { path: `/hooks/generic/${v.name}`, type: 'application/json' };
    case 'xplat': return { path: '/', type: 'application/json' };
    default: return null;
  }
}

// `promtool check metrics` (Debian's prometheus) on a /metrics text: the
// exposition format as Prometheus itself reads it, and its lint rules.
export async function promtoolCheck(text) {
  const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  child.stdin.end(text);
  const code = await new Promise((resolve) => child.on('exit', resolve));
  return { code, out };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls fn every 100 ms until it returns something truthy (returned), or
// throws after ms naming what was awaited.
export async function until(what, fn, ms = 15000) {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}
