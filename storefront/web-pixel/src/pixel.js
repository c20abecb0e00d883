// The pixel's behaviour, free of Shopify's runtime: buffer the events Shopify delivers, send
// them to Nova's ingest endpoint in batches with the visitor's consent, and keep them through
// a "not now" from the server. src/index.js hands this Shopify's extension API; tests hand it
// fakes.

import { analyticsDenied, mapConsent } from './consent.js';
import { byteLength, chunkEvents } from './chunk.js';
import { backoffDelay } from './retry.js';
import { DROP, RETRY, createTransport, ingestUrl } from './transport.js';

export const DEFAULTS = Object.freeze({
  batchSize: 20, // flush once this many events wait
  flushIntervalMs: 2_000, // and at most this long after the first of them arrived
  maxBufferedEvents: 500, // bound on what an unreachable server makes the page hold
  maxBatchEvents: 100, // the ingest endpoint's default per-request limit
  maxBatchBytes: 60 * 1024, // under the 64 KiB a beacon or keepalive fetch may carry
});

// A completed checkout is the most valuable event and the visitor is about to leave; a click
// on a recommendation navigates away, and the strict sandbox (a worker) never learns that the
// page is unloading, so waiting for the timer would lose the click.
const FLUSH_NOW = new Set(['checkout_completed', 'nova:recommendation_clicked']);
const NOVA_PREFIX = 'nova:';
// What a misconfigured pixel is: subscribed to nothing, so it cannot send anywhere by mistake.
const INERT = Object.freeze({ size: () => 0 });

export function createPixel(api, options = {}) {
  const { analytics, browser, init, settings, customerPrivacy } = api;
  const {
    fetch = globalThis.fetch?.bind(globalThis),
    setTimeout: schedule = globalThis.setTimeout.bind(globalThis),
    clearTimeout: cancel = globalThis.clearTimeout.bind(globalThis),
    now = Date.now,
    random = Math.random,
    logger = console,
    onPageHidden,
    ...overrides
  } = options;
  const limits = { ...DEFAULTS, ...overrides };

  const shop = init?.data?.shop?.myshopifyDomain;
  const endpoint = settings?.ingestUrl;
  const key = settings?.ingestKey;
  if (!shop || !endpoint || !key) {
    logger.warn('[nova-pixel] ingestUrl, ingestKey or shop missing: sending nothing');
    return INERT;
  }
  let url;
  try {
    url = ingestUrl(endpoint, key);
  } catch {
    logger.warn(`[nova-pixel] ingestUrl is not a valid URL: ${endpoint}`);
    return INERT;
  }

  // Only the id: everything else about the customer stays out of Nova's hands.
  const rawCustomerId = init?.data?.customer?.id;
  const customerId = rawCustomerId == null || rawCustomerId === '' ? null : String(rawCustomerId);
  const send = createTransport({ browser, fetch, now });

  let consent = mapConsent(init?.customerPrivacy);
  let buffer = [];
  let flushTimer = null;
  let retryTimer = null;
  let retryAttempt = 0;
  let sending = 0;
  let flushAgain = false;
  let warnedFull = false;

  function hold(events, { atFront = false } = {}) {
    if (analyticsDenied(consent)) return;
    buffer = atFront ? [...events, ...buffer] : [...buffer, ...events];
    const excess = buffer.length - limits.maxBufferedEvents;
    if (excess > 0) {
      buffer = buffer.slice(excess);
      // Once per outage: a console line per event would bury the shop's own messages.
      if (!warnedFull) {
        logger.warn(
          `[nova-pixel] over ${limits.maxBufferedEvents} events waiting: dropping the oldest`,
        );
      }
      warnedFull = true;
    }
  }

  function discard() {
    buffer = [];
    retryAttempt = 0;
    flushAgain = false;
    for (const timer of [flushTimer, retryTimer]) if (timer !== null) cancel(timer);
    flushTimer = retryTimer = null;
  }

  function onEvent(event) {
    if (analyticsDenied(consent)) return;
    hold([event]);
    // While the server has asked us to wait, its retry timer is the only way out.
    if (retryTimer !== null) return;
    if (buffer.length >= limits.batchSize || FLUSH_NOW.has(event?.name)) {
      flush();
    } else if (flushTimer === null) {
      flushTimer = schedule(() => {
        flushTimer = null;
        flush();
      }, limits.flushIntervalMs);
    }
  }

  // `urgent` is for the page going away: a last attempt, even inside a retry wait, and by
  // beacon first (see transport.js).
  function flush({ urgent = false } = {}) {
    if (flushTimer !== null) cancel(flushTimer);
    flushTimer = null;
    if (retryTimer !== null) {
      if (!urgent) return Promise.resolve();
      cancel(retryTimer);
      retryTimer = null;
    }
    if (buffer.length === 0) return Promise.resolve();
    // One delivery at a time, so that a failed batch goes back ahead of newer events and
    // the buffer keeps its order; the page going away cannot wait for that.
    if (sending > 0 && !urgent) {
      flushAgain = true;
      return Promise.resolve();
    }
    const events = buffer;
    buffer = [];
    sending += 1;
    return deliver(events, urgent)
      .catch((error) => logger.warn(`[nova-pixel] could not send: ${error?.message ?? error}`))
      .finally(() => {
        sending -= 1;
        if (sending === 0 && flushAgain) {
          flushAgain = false;
          flush();
        }
      });
  }

  async function deliver(events, urgent) {
    const chunks = chunkEvents(events, {
      maxEvents: limits.maxBatchEvents,
      maxBytes: limits.maxBatchBytes,
    });
    for (let i = 0; i < chunks.length; i += 1) {
      // Consent withdrawn mid-delivery: what has not left yet never will.
      if (analyticsDenied(consent)) return;
      const body = JSON.stringify(batchBody(chunks[i]));
      const result = await send(url, body, byteLength(body), { urgent });
      if (result.outcome === RETRY) {
        if (analyticsDenied(consent)) return;
        hold(chunks.slice(i).flat(), { atFront: true });
        scheduleRetry(result.retryAfterMs);
        return;
      }
      if (result.outcome === DROP) {
        const count = chunks[i].length;
        logger.warn(`[nova-pixel] ${count} event(s) refused (${result.reason}); not retried`);
      } else {
        retryAttempt = 0;
        warnedFull = false;
      }
    }
  }

  function batchBody(events) {
    const body = { shop, events, consent: { ...consent } };
    if (customerId !== null) body.customerId = customerId;
    return body;
  }

  function scheduleRetry(retryAfterMs) {
    const delay = retryAfterMs ?? backoffDelay(retryAttempt, random);
    retryAttempt += 1;
    if (retryTimer !== null) cancel(retryTimer);
    retryTimer = schedule(() => {
      retryTimer = null;
      flush();
    }, delay);
  }

  analytics.subscribe('all_standard_events', onEvent);
  analytics.subscribe('all_custom_events', (event) => {
    if (typeof event?.name === 'string' && event.name.startsWith(NOVA_PREFIX)) onEvent(event);
  });
  customerPrivacy?.subscribe?.('visitorConsentCollected', (event) => {
    consent = mapConsent(event?.customerPrivacy);
    if (analyticsDenied(consent)) discard();
  });
  onPageHidden?.(() => flush({ urgent: true }));

  // How many events wait: for tests and for debugging from the console.
  return { size: () => buffer.length };
}
