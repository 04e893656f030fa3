// queue.js -- the event log's delivery to the optional Queue (binding
// EVENTS_QUEUE): sends what follows the Queue's cursor and moves the cursor.
// EventLog (eventlog.js) calls it, one send at a time, from an append and
// from its alarm.

import { backoff, byteLength } from './util.js';

// The optional Queue gets each event after its cursor as its JSON text
// (contentType text: the exact bytes, which synccf queue reads like any
// JSON body), in order, in sendBatch calls within Cloudflare's limits: 100
// messages and 256 KB a call, 128 KB a message. An event over 128 KB cannot
// go to a Queue at all: it is counted (status: queue.tooLarge) and still
// reaches synccf by push and pull. The cursor moves after each call that
// succeeded; a failed call is retried with backoff (a call that failed
// after all may have been delivered: the Queue is at-least-once, and
// synccf drops the duplicate by its id). Returns when to run again.
export async function sendToQueue(log) {
  const MAX_MSG = 128000, MAX_CALL = 256000, MAX_N = 100, ROWS = 1000;
  const q = log.meta('queue', { cursor: 0 });
  const now = Date.now();
  if (q.next && q.next > now) return q.next;
  const rows = log.after(q.cursor, ROWS);
  let batch = [], bytes = 0;
  const tooLarge = [];
  // Counted once the cursor has passed them, so that a retry does not count them again.
  const countTooLarge = () => {
    const n = tooLarge.filter((seq) => seq <= q.cursor).length;
    if (n) log.setMeta('queueTooLarge', log.meta('queueTooLarge', 0) + n);
  };
  const flush = async (upTo) => {
    if (batch.length) await log.env.EVENTS_QUEUE.sendBatch(batch);
    q.cursor = upTo;
    batch = [];
    bytes = 0;
  };
  try {
    for (let i = 0; i < rows.length; i++) {
      const n = byteLength(rows[i].body);
      if (n > MAX_MSG) {
        tooLarge.push(rows[i].seq);
        console.warn(JSON.stringify({ msg: 'event too large for a Queue message', seq: rows[i].seq, bytes: n }));
      } else {
        if (batch.length === MAX_N || bytes + n > MAX_CALL) await flush(rows[i - 1].seq);
        batch.push({ body: rows[i].body, contentType: 'text' });
        bytes += n;
      }
    }
    if (rows.length) await flush(rows[rows.length - 1].seq);
  } catch (e) {
    const attempts = (q.attempts ?? 0) + 1;
    const next = Date.now() + backoff(log.env, attempts);
    const lastError = { at: new Date().toISOString(), detail: String(e.message || e).slice(0, 300) };
    console.warn(JSON.stringify({ msg: 'Queue send failed; retrying', attempts, ...lastError }));
    log.setMeta('queue', { ...q, attempts, next, lastError });
    countTooLarge();
    return next;
  }
  countTooLarge();
  // Nothing left (retention may have dropped what was waiting): a pending retry is over too.
  if (!rows.length && !q.attempts) return null;
  log.setMeta('queue', { cursor: q.cursor, lastSuccess: rows.length ? new Date().toISOString() : q.lastSuccess ?? null,
    lastError: q.lastError ?? null });
  return rows.length === ROWS ? Date.now() : null;
}
