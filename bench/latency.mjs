// End-to-end latency: POST an event, time until the go-task fingerprint file
// it should invalidate is gone. Sequential, so each sample is one event's
// whole trip: HTTP, (for synccf) signature check, commit, dispatch, unlink.
//   node bench/latency.mjs URL FILE N MODE [SECRET]
import { existsSync, writeFileSync } from 'node:fs';
import { createHmac } from 'node:crypto';

const [url, file, n = '300', mode = 'synccf', secret = ''] = process.argv.slice(2);
const samples = [];
for (let i = 0; i < Number(n); i++) {
  writeFileSync(file, 'fingerprint');
  const body = JSON.stringify({ id: `lat-${process.pid}-${i}-${Date.now()}`, subject: 'bench' });
  const headers = { 'content-type': 'application/json' };
  if (mode === 'webhook') headers['x-signature'] = 'sha256=' + createHmac('sha256', secret).update(body).digest('hex');
  else if (secret) headers.authorization = `Bearer ${secret}`;
  const t0 = process.hrtime.bigint();
  const res = await fetch(url, { method: 'POST', body, headers });
  await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
  while (existsSync(file)) {
    if (process.hrtime.bigint() - t0 > 5_000_000_000n) throw new Error('not invalidated within 5 s');
    await new Promise((r) => setImmediate(r));
  }
  samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
}
samples.sort((a, b) => a - b);
const q = (p) => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))];
console.log(`RESULT n=${samples.length} p50_ms=${q(0.5).toFixed(2)} p99_ms=${q(0.99).toFixed(2)} max_ms=${samples.at(-1).toFixed(2)}`);
