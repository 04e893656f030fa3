// util.js -- small helpers shared by the event log and its deliveries:
// reading numeric settings, measuring bodies, and the deliveries' backoff.

const utf8 = new TextEncoder();

// The UTF-8 length of a string: what limits on bodies and messages count.
export const byteLength = (s) => utf8.encode(s).length;

// A numeric setting from env (a string), or d when it is unset or not a number.
export const num = (v, d) => (v === undefined || v === '' || Number.isNaN(Number(v)) ? d : Number(v));

// Both deliveries' backoff: exponential with jitter. The receiver's
// Retry-After (seconds) is honoured even past the cap, up to an hour: it
// knows better when it can take the batch.
export function backoff(env, attempts, retryAfter = null) {
  const base = num(env.PUSH_BACKOFF_MS, 1000), cap = num(env.PUSH_MAX_BACKOFF_MS, 300000);
  let delay = Math.min(cap, base * 2 ** (attempts - 1));
  delay = delay / 2 + Math.random() * (delay / 2);
  if (retryAfter && /^\d+$/.test(retryAfter)) delay = Math.max(delay, Math.min(Number(retryAfter) * 1000, 3600000));
  return delay;
}
