// Content-Length: a value that is not a whole number of bytes (trailing
// bytes, a sign, hex, empty, a list) is refused 400 and one too large for 64
// bits 413, each with the connection closed, counted under bad_length and
// nothing stored; a valid value over --max-body gets synccf's own 413
// (too_large). libmicrohttpd answers the malformed values itself before
// on_request; server.c counts those (head_refused) and checks the value again
// in route(), so the bound the body is held to never rests on it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startDaemon, post, status, storedEvents } from './lib.mjs';

// One request over a raw socket: the answer's status line and body once the
// daemon has closed the connection (status 0 if it closed without one).
function raw(port, head, body = '') {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let got = '';
    s.setEncoding('latin1');
    s.on('data', (d) => { got += d; });
    s.on('error', () => {});
    s.on('close', () => {
      const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(got)?.[1] ?? 0);
      resolve({ status, body: got.slice(got.indexOf('\r\n\r\n') + 4) });
    });
    s.setTimeout(10000, () => s.destroy());
    s.write(head + body);
  });
}

const head = (len) =>
  `POST /hooks/generic/length HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${len}\r\n\r\n`;

test('a Content-Length that is not a count of bytes is refused and nothing is stored', async () => {
  const d = await startDaemon({ args: ['--max-body', '1024'] });
  try {
    const body = '{"n":1}';
    for (const len of ['7abc', '-7', '+7', '0x7', '', '7, 7', '7.0', '7e0']) {
      const r = await raw(d.port, head(len), body);
      assert.equal(r.status, 400, `Content-Length: ${JSON.stringify(len)}`);
    }
    for (const len of ['99999999999999999999999', '18446744073709551616']) {
      const r = await raw(d.port, head(len), body);
      assert.equal(r.status, 413, `Content-Length: ${len}`);
    }
    // Valid, and over the limit: synccf's own answer and counter.
    const over = await raw(d.port, head('18446744073709551615'), body);
    assert.equal(over.status, 413);
    assert.equal(JSON.parse(over.body).reason, 'too_large');
    // Counters reach the store with its next commit: wait for them.
    let rejected;
    for (let i = 0; i < 100 && !(rejected?.too_large && rejected?.bad_length === 10); i++) {
      rejected = (await status(d.state)).rejected;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(rejected?.too_large, 1);
    assert.equal(rejected?.bad_length, 10);
    assert.match(d.log, /msg="request rejected" status=400 reason=bad_length /);
    assert.match(d.log, /msg="request rejected" status=413 reason=bad_length /);
    assert.equal((await storedEvents(d.state)).length, 0);

    // The daemon still takes a well-formed request.
    const ok = await post(`${d.url}/hooks/generic/length`, body, { 'content-type': 'application/json' });
    assert.equal(ok.status, 200);
    assert.equal((await storedEvents(d.state)).length, 1);
  } finally {
    const { code } = await d.stop();
    assert.equal(code, 0);
  }
});
