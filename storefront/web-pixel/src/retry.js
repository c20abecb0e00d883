// When to try again after the ingest endpoint said "not now" (429, 503) or could not be
// reached. The server's Retry-After wins when the pixel can read it; a cross-origin response
// only exposes it if the server lists it in Access-Control-Expose-Headers, so an exponential
// backoff stands in when it is missing.

export const BASE_DELAY_MS = 2_000;
export const MAX_DELAY_MS = 60_000;
// A buggy or hostile Retry-After must not park the visitor's events for hours.
export const MAX_RETRY_AFTER_MS = 10 * 60_000;

// Retry-After is either delta-seconds or an HTTP date (RFC 9110 §10.2.3).
export function parseRetryAfter(value, nowMs) {
  if (typeof value !== 'string' || value.trim() === '') return null;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Math.min(Number(text) * 1000, MAX_RETRY_AFTER_MS);
  // Every HTTP date format starts with the day's name; Date.parse alone would also accept
  // things like "-5" as some date.
  if (!/^[A-Za-z]{3}/.test(text)) return null;
  const date = Date.parse(text);
  if (Number.isNaN(date)) return null;
  return Math.min(Math.max(date - nowMs, 0), MAX_RETRY_AFTER_MS);
}

// Jittered: many visitors' pixels hit the same outage, and must not return in lockstep.
export function backoffDelay(attempt, random = Math.random) {
  const ceiling = Math.min(BASE_DELAY_MS * 2 ** attempt, MAX_DELAY_MS);
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
