import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ENDPOINT,
  KEY,
  SHOP,
  customEvent,
  emitAll,
  fakeAnalytics,
  settle,
  setup,
  standardEvent,
} from './fakes.js';
import { createPixel } from '../src/pixel.js';

const views = (n) => Array.from({ length: n }, () => standardEvent('page_viewed'));

test('subscribes to all standard events and to custom events', () => {
  const { analytics } = setup();
  assert.deepEqual(analytics.names().sort(), ['all_custom_events', 'all_standard_events']);
});

test('batching: nothing leaves before 20 events, then one batch of 20', async () => {
  const { analytics, sentBatches } = setup();
  const events = views(20);
  await emitAll(analytics, events.slice(0, 19));
  assert.equal(sentBatches().length, 0);
  await emitAll(analytics, events.slice(19));
  assert.equal(sentBatches().length, 1);
  assert.deepEqual(sentBatches()[0].events, events);
});

test('a normal flush is a fetch: key in the query, text/plain, keepalive; no beacon', async () => {
  const { analytics, browser, fetch } = setup();
  const events = views(20);
  await emitAll(analytics, events);
  assert.equal(browser.calls.length, 0, 'the beacon, though it would go, is not used');
  assert.equal(fetch.calls.length, 1);
  const [{ url, init, body }] = fetch.calls;
  assert.equal(url, `${ENDPOINT}?key=${KEY}`);
  assert.equal(init.method, 'POST');
  assert.equal(init.keepalive, true);
  assert.equal(init.credentials, 'omit');
  assert.equal(init.headers['Content-Type'], 'text/plain');
  assert.deepEqual(body.events, events);
});

test('timer: an event leaves 2 s after it arrived; later ones do not delay it', async () => {
  const { analytics, clock, sentBatches } = setup();
  await emitAll(analytics, views(1));
  await clock.advance(1500);
  await emitAll(analytics, views(1));
  await clock.advance(499);
  assert.equal(sentBatches().length, 0);
  await clock.advance(1);
  assert.equal(sentBatches().length, 1);
  assert.equal(sentBatches()[0].events.length, 2);
  assert.equal(clock.pending(), 0, 'an empty buffer keeps no timer');
});

test('checkout_completed is sent at once, with what was waiting before it', async () => {
  const { analytics, sentBatches } = setup();
  const before = views(2);
  const completed = standardEvent('checkout_completed', { checkout: { order: { id: '1' } } });
  await emitAll(analytics, [...before, completed]);
  assert.equal(sentBatches().length, 1);
  assert.deepEqual(sentBatches()[0].events, [...before, completed]);
});

test('the page being hidden sends what is waiting at once, by beacon', async () => {
  const { analytics, browser, fetch, hidePage, sentBatches } = setup();
  await emitAll(analytics, views(3));
  await hidePage();
  assert.equal(sentBatches().length, 1);
  assert.equal(sentBatches()[0].events.length, 3);
  assert.equal(browser.calls.length, 1);
  assert.equal(fetch.calls.length, 0);
});

test("nova's widget events are forwarded unchanged; other apps' are not", async () => {
  const { analytics, hidePage, sentBatches } = setup();
  const viewed = customEvent('nova:recommendation_viewed', {
    ranking_id: 'r-1',
    products: [{ id: 'gid://shopify/Product/1', position: 1 }, { id: '2', position: 2 }],
    widget: 'pdp-related',
  });
  const other = customEvent('acme:banner_seen', { banner: 'x' });
  await emitAll(analytics, [viewed, other]);
  await hidePage();
  assert.deepEqual(sentBatches()[0].events, [JSON.parse(JSON.stringify(viewed))]);
});

test('a recommendation click is sent at once: it usually navigates away', async () => {
  const { analytics, sentBatches } = setup();
  const clicked = customEvent('nova:recommendation_clicked', {
    ranking_id: 'r-1',
    product_id: '2',
    position: 2,
    widget: 'pdp-related',
  });
  await emitAll(analytics, [clicked]);
  assert.equal(sentBatches().length, 1);
  assert.deepEqual(sentBatches()[0].events[0].customData, clicked.customData);
});

test('page hidden, by beacon: key in the query, shop, events and consent in the body', async () => {
  const { analytics, browser, hidePage } = setup();
  await emitAll(analytics, views(1));
  await hidePage();
  const [{ url, raw, body }] = browser.calls;
  assert.equal(url, `${ENDPOINT}?key=${KEY}`);
  assert.equal(typeof raw, 'string');
  assert.deepEqual(Object.keys(body).sort(), ['consent', 'events', 'shop']);
  assert.equal(body.shop, SHOP);
  assert.deepEqual(body.consent, {
    analytics: true,
    marketing: true,
    preferences: true,
    sale_of_data: true,
  });
  assert.ok(!('key' in body), 'the key is not repeated in the body');
});

test('initial consent comes from init.customerPrivacy; unknown flags are null', async () => {
  const { analytics, hidePage, sentBatches } = setup({
    customerPrivacy: { analyticsProcessingAllowed: true, marketingAllowed: false },
  });
  await emitAll(analytics, views(1));
  await hidePage();
  assert.deepEqual(sentBatches()[0].consent, {
    analytics: true,
    marketing: false,
    preferences: null,
    sale_of_data: null,
  });
});

test('visitorConsentCollected updates the consent sent with the next batch', async () => {
  const { analytics, privacy, hidePage, sentBatches } = setup({ customerPrivacy: null });
  await emitAll(analytics, views(1));
  await hidePage();
  assert.equal(sentBatches()[0].consent.analytics, null);
  privacy.collect({
    analyticsProcessingAllowed: true,
    marketingAllowed: false,
    preferencesProcessingAllowed: false,
    saleOfDataAllowed: true,
  });
  await emitAll(analytics, views(1));
  await hidePage();
  assert.deepEqual(sentBatches()[1].consent, {
    analytics: true,
    marketing: false,
    preferences: false,
    sale_of_data: true,
  });
});

test('consent is read when sending, so it applies to events already waiting', async () => {
  const { analytics, privacy, hidePage, sentBatches } = setup({ customerPrivacy: null });
  await emitAll(analytics, views(2));
  privacy.collect({ analyticsProcessingAllowed: true });
  await hidePage();
  assert.equal(sentBatches()[0].consent.analytics, true);
});

test('analytics withdrawn: waiting events are discarded, nothing more collected', async () => {
  const { analytics, privacy, clock, hidePage, sentBatches, pixel } = setup();
  await emitAll(analytics, views(3));
  privacy.collect({ analyticsProcessingAllowed: false });
  assert.equal(pixel.size(), 0);
  await emitAll(analytics, [...views(25), standardEvent('checkout_completed')]);
  await clock.advance(10_000);
  await hidePage();
  assert.equal(sentBatches().length, 0);
  assert.equal(clock.pending(), 0);

  privacy.collect({ analyticsProcessingAllowed: true });
  await emitAll(analytics, views(1));
  await hidePage();
  assert.equal(sentBatches().length, 1, 'collection resumes once analytics is allowed again');
});

test('a logged-in customer is identified by id only', async () => {
  const customer = {
    id: '7001',
    email: 'ada@example.com',
    firstName: 'Ada',
    lastName: 'L',
    phone: '+1 555',
  };
  const { analytics, browser, hidePage } = setup({ customer });
  await emitAll(analytics, views(1));
  await hidePage();
  const [{ raw, body }] = browser.calls;
  assert.equal(body.customerId, '7001');
  for (const pii of ['ada@example.com', 'Ada', '+1 555']) assert.ok(!raw.includes(pii), pii);
});

test('an anonymous visitor sends no customerId', async () => {
  const { analytics, hidePage, sentBatches } = setup({ customer: null });
  await emitAll(analytics, views(1));
  await hidePage();
  assert.ok(!('customerId' in sentBatches()[0]));
});

test('page hidden, beacon refused: a keepalive text/plain fetch, key in the query', async () => {
  const { analytics, browser, fetch, hidePage } = setup({ beacon: () => false });
  const events = views(2);
  await emitAll(analytics, events);
  await hidePage();
  assert.equal(browser.calls.length, 1);
  assert.equal(fetch.calls.length, 1);
  const [{ url, init, body }] = fetch.calls;
  assert.equal(url, `${ENDPOINT}?key=${KEY}`);
  assert.equal(init.keepalive, true);
  assert.equal(init.credentials, 'omit');
  assert.equal(init.headers['Content-Type'], 'text/plain');
  assert.equal(init.body, browser.calls[0].raw, 'the same batch, byte for byte');
  assert.deepEqual(body.events, events);
});

test('429: the batch is kept and resent after Retry-After, with later events', async () => {
  const { analytics, browser, fetch, clock } = setup({
    responses: [{ status: 429, headers: { 'Retry-After': '3' } }],
  });
  const first = views(20);
  await emitAll(analytics, first);
  assert.equal(fetch.calls.length, 1);
  const later = views(25);
  await emitAll(analytics, later);
  assert.equal(fetch.calls.length, 1, 'thresholds wait while the server asked to');
  await clock.advance(2999);
  assert.equal(fetch.calls.length, 1);
  await clock.advance(1);
  assert.equal(fetch.calls.length, 2);
  assert.deepEqual(fetch.calls[1].body.events, [...first, ...later]);
  assert.equal(browser.calls.length, 0, 'no beacon: its answer would have hidden the 429');
});

test('503 without a readable Retry-After backs off, longer each time, then recovers', async () => {
  const { analytics, fetch, clock, pixel } = setup({
    responses: [{ status: 503 }, { status: 503 }],
  });
  const events = views(20);
  await emitAll(analytics, events);
  await clock.advance(999);
  assert.equal(fetch.calls.length, 1);
  await clock.advance(1); // attempt 0: 1-2 s, jitter pinned to its low end
  assert.equal(fetch.calls.length, 2);
  await clock.advance(1999);
  assert.equal(fetch.calls.length, 2);
  await clock.advance(1); // attempt 1: 2-4 s
  assert.equal(fetch.calls.length, 3);
  assert.deepEqual(fetch.calls[2].body.events, events);
  assert.equal(pixel.size(), 0);
  assert.equal(clock.pending(), 0);
});

test('a network failure is retried like a 503, by fetch, not by beacon', async () => {
  const { analytics, browser, fetch, clock } = setup({
    responses: [new TypeError('Failed to fetch')],
  });
  await emitAll(analytics, views(20));
  await clock.advance(2000);
  assert.equal(fetch.calls.length, 2);
  assert.equal(browser.calls.length, 0);
});

test('the page going away sends at once even while waiting to retry', async () => {
  for (const beacon of [() => true, () => false]) {
    const { analytics, fetch, hidePage, sentBatches } = setup({
      beacon,
      responses: [{ status: 429, headers: { 'Retry-After': '60' } }],
    });
    const events = views(20);
    await emitAll(analytics, events);
    await hidePage();
    assert.deepEqual(sentBatches().map((b) => b.events), [events]);
    assert.equal(fetch.calls.length, beacon() ? 1 : 2, 'fetch only if the beacon is refused');
  }
});

test('400/401/413 drop the batch with a warning and do not block later batches', async () => {
  const { analytics, fetch, logger, clock } = setup({
    responses: [{ status: 401 }],
  });
  await emitAll(analytics, views(20));
  assert.equal(logger.warnings.length, 1);
  assert.match(logger.warnings[0], /HTTP 401/);
  await clock.advance(60_000);
  assert.equal(fetch.calls.length, 1, 'not retried');
  await emitAll(analytics, views(20));
  assert.equal(fetch.calls.length, 2);
});

test('the buffer is bounded: past 500 events the oldest are dropped with a warning', async () => {
  const { analytics, fetch, clock, logger, pixel } = setup({
    responses: [{ status: 503, headers: { 'Retry-After': '600' } }],
  });
  const events = views(620);
  await emitAll(analytics, events);
  assert.equal(pixel.size(), 500);
  const warnings = logger.warnings.filter((w) => /dropping the oldest/.test(w));
  assert.equal(warnings.length, 1, 'warned once, not per event');
  await clock.advance(600_000);
  const resent = fetch.calls.slice(1).flatMap((c) => c.body.events);
  assert.deepEqual(resent, events.slice(120), 'the newest 500, in order');
});

test('a large backlog is sent in batches within the server limit of 100 events', async () => {
  const { analytics, fetch, clock } = setup({
    responses: [{ status: 503, headers: { 'Retry-After': '1' } }],
  });
  await emitAll(analytics, views(250));
  await clock.advance(1000);
  const sizes = fetch.calls.slice(1).map((c) => c.body.events.length);
  assert.deepEqual(sizes, [100, 100, 50]);
});

test('misconfigured: warns once and subscribes to nothing', () => {
  for (const overrides of [
    { settings: { ingestUrl: '', ingestKey: KEY } },
    { settings: { ingestUrl: ENDPOINT } },
    { settings: { ingestUrl: 'nova.example.com/v1/events', ingestKey: KEY } },
    { shop: null },
  ]) {
    const { analytics, logger } = setup(overrides);
    assert.deepEqual(analytics.names(), []);
    assert.equal(logger.warnings.length, 1);
  }
});

test('runs with the real timers and global fetch when none are injected', async (t) => {
  const analytics = fakeAnalytics();
  const calls = [];
  const beacons = [];
  t.mock.method(globalThis, 'fetch', async (url, init) => {
    calls.push({ url, init });
    return { status: 202, headers: { get: () => null } };
  });
  createPixel(
    {
      analytics,
      browser: { sendBeacon: async (url) => beacons.push(url) > 0 },
      init: { data: { shop: { myshopifyDomain: SHOP } } },
      settings: { ingestUrl: ENDPOINT, ingestKey: KEY },
    },
    { flushIntervalMs: 5 },
  );
  analytics.emit(standardEvent('page_viewed'));
  await new Promise((resolve) => setTimeout(resolve, 30));
  await settle();
  assert.equal(calls.length, 1);
  assert.equal(beacons.length, 0);
});

test('without any fetch, a normal flush goes by beacon', async () => {
  const { analytics, browser, sentBatches } = setup({ options: { fetch: null } });
  const events = views(20);
  await emitAll(analytics, events);
  assert.equal(browser.calls.length, 1);
  assert.deepEqual(sentBatches()[0].events, events);
});

test('one delivery at a time: a batch filled during a send goes right after it', async () => {
  let answer;
  const { analytics, fetch } = setup({
    responses: [new Promise((resolve) => (answer = resolve))],
  });
  const first = views(20);
  const second = views(20);
  await emitAll(analytics, first);
  await emitAll(analytics, second);
  assert.equal(fetch.calls.length, 1);
  answer({ status: 202 });
  await settle();
  assert.equal(fetch.calls.length, 2);
  assert.deepEqual(fetch.calls[1].body.events, second);
});

test('analytics withdrawn while a send fails: nothing is kept for a retry', async () => {
  const { analytics, privacy, fetch, clock, pixel } = setup({
    responses: [{ status: 503, headers: { 'Retry-After': '1' } }],
  });
  for (const event of views(20)) analytics.emit(event);
  privacy.collect({ analyticsProcessingAllowed: false });
  await settle();
  assert.equal(fetch.calls.length, 1);
  assert.equal(pixel.size(), 0);
  await clock.advance(60_000);
  assert.equal(fetch.calls.length, 1);
  assert.equal(clock.pending(), 0);
});
