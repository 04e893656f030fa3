// End-to-end latency: POST an event, time until the go-task fingerprint file
// it should invalidate is gone. Sequential, so each sample is one event's
// whole trip: HTTP, (for synccf) signature check, commit, dispatch, unlink.
//   node bench/latency.mjs URL FILE N MODE [SECRET]
// MODE floor: the same POST answered without any work (a wrong token: 401),
// which is what this client and HTTP cost by themselves.
//
// The client is a single kept-alive socket writing prebuilt requests: Node's
// fetch() added about 0.85 ms of its own per request (p50) and most of the
// p99, the same for every server, which hid the servers' own differences.
import { existsSync, writeFileSync } from 'node:fs';
import { createHmac } from 'node:crypto';
import net from 'node:net';

const [url, file, n = '300', mode = 'synccf', secret = ''] = process.argv.slice(2);
const u = new URL(url);
const sock = net.connect(Number(u.port), u.hostname);
sock.setNoDelay(true);
await new Promise((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });

// One response at a time: status line, headers, a Content-Length body.
let buf = Buffer.alloc(0);
let waiting = null;
sock.on('data', (d) => {
  buf = Buffer.concat([buf, d]);
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0 || !waiting) return;
  const head = buf.subarray(0, end).toString('latin1');
  const len = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? NaN);
  if (Number.isNaN(len)) return waiting.reject(new Error(`no Content-Length in: ${head}`));
  if (buf.length < end + 4 + len) return;
  buf = buf.subarray(end + 4 + len);
  const w = waiting;
  waiting = null;
  w.resolve(Number(head.slice(9, 12)));
});
sock.on('error', (e) => waiting?.reject(e));
const send = (req) => new Promise((resolve, reject) => { waiting = { resolve, reject }; sock.write(req); });

const samples = [];
for (let i = 0; i < Number(n); i++) {
  if (mode !== 'floor') writeFileSync(file, 'fingerprint');
  const body = JSON.stringify({ id: `lat-${process.pid}-${i}-${Date.now()}`, subject: 'bench' });
  let auth = '';
  if (mode === 'webhook') auth = `X-Signature: sha256=${createHmac('sha256', secret).update(body).digest('hex')}\r\n`;
  else if (mode === 'floor') auth = 'Authorization: Bearer not-the-token\r\n';
  else if (secret) auth = `Authorization: Bearer ${secret}\r\n`;
  const req = `POST ${u.pathname} HTTP/1.1\r\nHost: ${u.host}\r\nContent-Type: application/json\r\n${auth}` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  const t0 = process.hrtime.bigint();
  const status = await send(req);
  if (mode === 'floor' ? status !== 401 : status !== 200) throw new Error(`HTTP ${status}`);
  while (mode !== 'floor' && existsSync(file)) {
    if (process.hrtime.bigint() - t0 > 5_000_000_000n) throw new Error('not invalidated within 5 s');
    await new Promise((r) => setImmediate(r));
  }
  samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
}
sock.destroy();
samples.sort((a, b) => a - b);
const q = (p) => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))];
console.log(`RESULT n=${samples.length} p50_ms=${q(0.5).toFixed(2)} p99_ms=${q(0.99).toFixed(2)} max_ms=${samples.at(-1).toFixed(2)}`);
