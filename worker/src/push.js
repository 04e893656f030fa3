// push.js -- the event log's delivery to synccf (SYNC_ENDPOINT): signed
// batches POSTed in order to its /v1/events, with backoff, stopping at a
// batch the receiver refuses. EventLog (eventlog.js) calls it from its alarm.

import { signWebhook } from './auth.js';
import { backoff, byteLength, num } from './util.js';

// Push: one batch at a time, in order, never skipping ahead. Returns when
// to run again (null: nothing to do until new events arrive).
export async function pushStep(log) {
  const endpoint = log.env.SYNC_ENDPOINT;
  const push = log.meta('push', {});
  if (push.failed) return null;
  if (push.next && push.next > Date.now()) return push.next;
  const cursor = push.cursor ?? 0;
  const all = log.after(cursor, num(log.env.PUSH_BATCH, 100));
  if (!all.length) return null;
  // A batch also stays under PUSH_MAX_BYTES (512 KiB), below the receiver's
  // body limit (1 MiB by default): it would refuse a larger one with 413,
  // and a refused batch stops the push. One event always goes, whatever
  // its size (each is below that limit when it arrives here).
  const maxBytes = num(log.env.PUSH_MAX_BYTES, 512 * 1024);
  let size = 2, k = 0;
  for (; k < all.length; k++) {
    const n = byteLength(all[k].body) + 1;
    if (k > 0 && size + n > maxBytes) break;
    size += n;
  }
  const rows = all.slice(0, k);
  const first = rows[0].seq, last = rows[rows.length - 1].seq;
  const body = `[${rows.map((r) => r.body).join(',')}]`;
  const id = `batch-${first}-${last}`;
  const ts = String(Math.floor(Date.now() / 1000));
  let status = 0, detail = '', retryAfter = null;
  try {
    const res = await fetch(endpoint.replace(/\/+$/, '') + '/v1/events', {
      method: 'POST', body,
      headers: { 'content-type': 'application/cloudevents-batch+json', 'webhook-id': id, 'webhook-timestamp': ts,
        'webhook-signature': await signWebhook(log.env.SYNC_SECRET, id, ts, body) },
    });
    status = res.status;
    detail = (await res.text()).slice(0, 300);
    retryAfter = res.headers.get('retry-after');
  } catch (e) {
    detail = String(e.message || e);
  }
  const now = new Date().toISOString();
  if (status >= 200 && status < 300) {
    log.setMeta('push', { cursor: last, attempts: 0, lastSuccess: now, lastError: push.lastError ?? null });
    return log.after(last, 1).length ? Date.now() : null;
  }
  const lastError = { at: now, status, detail, batch: id };
  // A stale timestamp is the clocks' disagreement, not the batch's fault:
  // each attempt is signed anew, so it goes through once they agree.
  let reason = null;
  try { reason = JSON.parse(detail).reason; } catch { /* not the receiver's JSON */ }
  if (status >= 400 && status < 500 && status !== 408 && status !== 429 && reason !== 'stale_timestamp') {
    // The receiver refuses this batch for good: stop and show it, rather
    // than retry forever or skip it. POST /v1/push/retry resumes.
    log.setMeta('push', { ...push, cursor, lastError, failed: { batch: id, first, last, status, detail, at: now } });
    return null;
  }
  const attempts = (push.attempts ?? 0) + 1;
  const next = Date.now() + backoff(log.env, attempts, retryAfter);
  log.setMeta('push', { ...push, cursor, attempts, lastError, next });
  return next;
}
