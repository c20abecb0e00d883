// Delivers one batch body to the ingest endpoint. Fetch first: its status tells the pixel to
// move on, retry later (429, 5xx, network failure) or give up on the batch (other 4xx). A
// beacon's answer is invisible, so a batch the server turned away with 429 or 503 would pass
// for sent and be lost. A beacon goes first only when the page is going away (`urgent`): the
// browser delivers it even after the page is gone, and nothing would be left to retry anyway.
// It is also the last resort where there is no fetch. Both send text/plain with the key in the
// query string, so neither needs a CORS preflight.

import { parseRetryAfter } from './retry.js';

// Browsers refuse keepalive bodies over 64 KiB in flight; chunking keeps batches under this,
// and a lone oversized event goes without keepalive rather than not at all.
export const KEEPALIVE_LIMIT_BYTES = 64 * 1024;

export const SENT = 'sent';
export const RETRY = 'retry';
export const DROP = 'drop';

export function ingestUrl(endpoint, key) {
  const url = new URL(endpoint);
  url.searchParams.set('key', key);
  return url.toString();
}

export function createTransport({ browser, fetch, now = Date.now }) {
  async function beacon(url, body) {
    if (typeof browser?.sendBeacon !== 'function') return false;
    try {
      // The strict sandbox proxies sendBeacon to the page and answers with a Promise.
      return (await browser.sendBeacon(url, body)) === true;
    } catch {
      return false;
    }
  }

  async function post(url, body, bytes) {
    let response;
    try {
      response = await fetch(url, {
        method: 'POST',
        body,
        headers: { 'Content-Type': 'text/plain' },
        keepalive: bytes <= KEEPALIVE_LIMIT_BYTES,
        credentials: 'omit',
      });
    } catch (error) {
      return { outcome: RETRY, reason: `network error: ${error?.message ?? error}` };
    }
    return classify(response, now());
  }

  const hasFetch = typeof fetch === 'function';
  return async function send(url, body, bytes, { urgent = false } = {}) {
    if ((urgent || !hasFetch) && (await beacon(url, body))) return { outcome: SENT, via: 'beacon' };
    if (!hasFetch) return { outcome: RETRY, reason: 'beacon refused, no fetch', via: 'beacon' };
    return { ...(await post(url, body, bytes)), via: 'fetch' };
  };
}

// The server deduplicates by event id, so resending after any 5xx cannot double-count; a 4xx
// other than 429 means this batch will never be accepted as it is.
function classify(response, nowMs) {
  const { status } = response;
  if (status >= 200 && status < 300) return { outcome: SENT, status };
  if (status === 429 || status >= 500) {
    const retryAfterMs = parseRetryAfter(response.headers?.get?.('Retry-After') ?? null, nowMs);
    return { outcome: RETRY, status, retryAfterMs, reason: `HTTP ${status}` };
  }
  return { outcome: DROP, status, reason: `HTTP ${status}` };
}
