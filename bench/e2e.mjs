// End to end: a Cloudflare payload posted to the Worker (workerd), pulled by
// `synccf run` (mode worker), stored, and its task-cache handler done -- the
// time until the go-task fingerprint file is gone. Sequential samples.
//   node bench/e2e.mjs [N]   (prints a Markdown row)
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startWorker, INGEST_SECRETS, notifyHeaders } from '../worker/test/helpers.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const N = Number(process.argv[2] || 200);
const work = mkdtempSync(join(tmpdir(), 'synccf-e2e-'));
const project = join(work, 'p');
mkdirSync(join(project, '.task', 'checksum'), { recursive: true });
const w = await startWorker({ bindings: { ...INGEST_SECRETS, PULL_TOKEN: 't', HEARTBEAT_SECONDS: '5' } });
const cfg = join(work, 'synccf.yaml');
writeFileSync(cfg, `mode: worker\nworker_url: ${w.url}\nlisten: 127.0.0.1:0\nhandlers:\n  - name: c\n    match: { type: com.cloudflare.pages.deployment.success }\n    task_cache: { dir: ${project}, tasks: [build], remote: false }\n`);
const d = spawn(join(ROOT, 'build', 'synccf'), ['--config', cfg, '--state', join(work, 's'), '--log-level', 'error', 'run'], { env: { ...process.env, SYNCCF_PULL_TOKEN: 't' }, stdio: 'ignore' });
await new Promise((r) => setTimeout(r, 1500));
const base = JSON.parse(readFileSync(join(ROOT, 'tests', 'vectors', 'inputs', 'pages-deployment-success.json'), 'utf8'));
const file = join(project, '.task', 'checksum', 'build');
const samples = [];
for (let i = 0; i < N; i++) {
  writeFileSync(file, 'x');
  base.data.deployment_id = `bench${i}-${Date.now()}`;
  const t0 = process.hrtime.bigint();
  const r = await fetch(w.url + '/hooks/notifications', { method: 'POST', body: JSON.stringify(base), headers: notifyHeaders });
  await r.arrayBuffer();
  while (existsSync(file)) await new Promise((res) => setImmediate(res));
  samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
}
d.kill('SIGTERM');
await w.dispose();
samples.sort((a, b) => a - b);
const q = (p) => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))].toFixed(2);
console.log(`| Pages notification → Worker (workerd) → \`synccf run\` (pull) → store → task-cache handler done | ${N} | ${q(0.5)} | ${q(0.99)} |`);
process.exit(0);
