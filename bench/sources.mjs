// Catch-up and poll-cost benchmarks for the outbound ways in.
//   catch-up: N events buffered in the Worker (workerd), then `synccf pull`
//             started: events/s until all are in the store.
//   poll:     a day of synthetic audit entries (one a minute) read by
//             `synccf poll`, then a steady trickle: API requests per new event.
// Run: node bench/sources.mjs [N]   (prints Markdown)
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { startWorker, req, INGEST_SECRETS, hookHeaders } from '../worker/test/helpers.mjs';
import { startFakeCloudflare, auditEntries } from '../tests/integration/fakecf.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'build', 'synccf');
const N = Number(process.argv[2] || 100000);
// Events in the store; 0 until the daemon has created it.
const count = (state) => {
  try {
    const out = execFileSync(BIN, ['--state', state, 'status', '--json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return JSON.parse(out).events.total;
  } catch {
    return 0;
  }
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function catchUp() {
  const w = await startWorker({ bindings: { ...INGEST_SECRETS, PULL_TOKEN: 't', MAX_DECOMPRESSED: String(512 << 20) } });
  const t0 = Date.now();
  for (let i = 0; i < N; i += 20000) {
    const lines = [];
    for (let k = i; k < Math.min(N, i + 20000); k++)
      lines.push(JSON.stringify({ RayID: `bench-${k}`, EdgeStartTimestamp: 1763633000000000000 + k, ZoneName: 'example.com', ClientRequestURI: `/page/${k}`, EdgeResponseStatus: 200 }));
    const r = await req(w.url + '/hooks/logpush/http_requests', { body: gzipSync(lines.join('\n')), headers: hookHeaders });
    if (r.status !== 200) throw new Error(r.text);
  }
  const loadS = (Date.now() - t0) / 1000;
  const state = mkdtempSync(join(tmpdir(), 'synccf-bench-'));
  const t1 = Date.now();
  const p = spawn(BIN, ['--state', state, '--log-level', 'warn', 'pull', '--worker-url', w.url], { env: { ...process.env, SYNCCF_PULL_TOKEN: 't' }, stdio: 'ignore' });
  let n = 0;
  while ((n = count(state)) < N) await sleep(200);
  const pullS = (Date.now() - t1) / 1000;
  p.kill('SIGTERM');
  await w.dispose();
  return { loadS, pullS, rate: N / pullS };
}

async function pollCost() {
  const cf = await startFakeCloudflare();
  cf.audit = auditEntries(1440, 60000);
  const state = mkdtempSync(join(tmpdir(), 'synccf-bench-'));
  const env = { ...process.env, CLOUDFLARE_API_TOKEN: cf.token, CLOUDFLARE_ACCOUNT_ID: cf.account, CLOUDFLARE_API_BASE_URL: cf.url };
  const p = spawn(BIN, ['--state', state, '--log-level', 'warn', 'poll', '--interval', '1s', '--overlap', '10s'], { env, stdio: 'ignore' });
  while (count(state) < 1440) await sleep(100);
  const dayRequests = cf.requests.length;
  if (dayRequests < 1) throw new Error(`poll: ${count(state)} events stored but no API request seen`);
  // Steady state: 10 new entries between runs, ten runs.
  const before = cf.requests.length;
  for (let run = 0; run < 10; run++) {
    cf.audit.push(...auditEntries(10, 50).map((e, i) => ({ ...e, id: `steady-${run}-${i}` })));
    await sleep(1000);
  }
  while (count(state) < 1540) await sleep(100);
  const steady = cf.requests.length - before;
  p.kill('SIGTERM');
  await cf.close();
  return { dayRequests, dayPerEvent: dayRequests / 1440, steady, steadyPerEvent: steady / 100 };
}

const c = await catchUp();
const pc = await pollCost();
console.log(`| benchmark | result |
|---|---|
| catch-up: ${N.toLocaleString('en')} events buffered in the Worker (workerd, loaded in ${c.loadS.toFixed(1)} s), pulled by \`synccf pull\` into the store | ${c.pullS.toFixed(1)} s, **${Math.round(c.rate).toLocaleString('en')} events/s** |
| poll, first run over a day of audit entries (1,440, one a minute) | ${pc.dayRequests} API requests, ${pc.dayPerEvent.toFixed(4)} requests per event |
| poll, steady state (10 runs, 10 new entries between runs, interval 1 s) | ${pc.steady} requests for 100 new events, ${pc.steadyPerEvent.toFixed(2)} per event |`);
