import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DROP,
  KEEPALIVE_LIMIT_BYTES,
  RETRY,
  SENT,
  createTransport,
  ingestUrl,
} from '../src/transport.js';
import { fakeBrowser, fakeFetch } from './fakes.js';

const URL_ = 'https://nova.example.com/v1/events?key=k';
const BODY = JSON.stringify({ shop: 's.myshopify.com', events: [] });

test('the key travels in the query string, URL-encoded, next to any existing parameters', () => {
  assert.equal(
    ingestUrl('https://nova.example.com/v1/events', 'k1'),
    'https://nova.example.com/v1/events?key=k1',
  );
  assert.equal(
    ingestUrl('https://nova.example.com/v1/events?region=eu', 'a b&c'),
    'https://nova.example.com/v1/events?region=eu&key=a+b%26c',
  );
  assert.throws(() => ingestUrl('not a url', 'k'));
});

function assertPost({ url, init }, { keepalive = true } = {}) {
  assert.equal(url, URL_);
  assert.equal(init.method, 'POST');
  assert.equal(init.body, BODY);
  assert.equal(init.keepalive, keepalive);
  assert.equal(init.credentials, 'omit');
  assert.deepEqual(init.headers, { 'Content-Type': 'text/plain' });
}

test('a normal send is a keepalive text/plain fetch, never a beacon', async () => {
  const browser = fakeBrowser(() => true);
  const fetch = fakeFetch([{ status: 202 }]);
  const result = await createTransport({ browser, fetch })(URL_, BODY, BODY.length);
  assert.deepEqual(result, { outcome: SENT, status: 202, via: 'fetch' });
  assertPost(fetch.calls[0]);
  assert.equal(browser.calls.length, 0);
});

test('a body too large for keepalive is still sent, without keepalive', async () => {
  const fetch = fakeFetch();
  await createTransport({ fetch })(URL_, BODY, KEEPALIVE_LIMIT_BYTES + 1);
  assertPost(fetch.calls[0], { keepalive: false });
});

test('429 and 503 ask for a retry, with the Retry-After the server gave', async () => {
  for (const status of [429, 503]) {
    const browser = fakeBrowser(() => true);
    const fetch = fakeFetch([{ status, headers: { 'Retry-After': '7' } }]);
    const result = await createTransport({ browser, fetch })(URL_, BODY, 10);
    assert.deepEqual(
      { outcome: result.outcome, status: result.status, retryAfterMs: result.retryAfterMs },
      { outcome: RETRY, status, retryAfterMs: 7000 },
    );
    assert.equal(browser.calls.length, 0, 'the answer is seen, so the batch is not lost');
  }
});

test('without a readable Retry-After the retry delay is left to the backoff', async () => {
  const fetch = fakeFetch([{ status: 503 }]);
  const result = await createTransport({ fetch })(URL_, BODY, 10);
  assert.equal(result.outcome, RETRY);
  assert.equal(result.retryAfterMs, null);
});

test('other 5xx are retried; the server deduplicates by event id', async () => {
  for (const status of [500, 502, 504]) {
    const result = await createTransport({ fetch: fakeFetch([{ status }]) })(URL_, BODY, 10);
    assert.equal(result.outcome, RETRY);
  }
});

test('a network error is retried, not handed to a beacon', async () => {
  const browser = fakeBrowser(() => true);
  const fetch = fakeFetch([new TypeError('Failed to fetch')]);
  const result = await createTransport({ browser, fetch })(URL_, BODY, 10);
  assert.equal(result.outcome, RETRY);
  assert.equal(result.via, 'fetch');
  assert.match(result.reason, /network error: Failed to fetch/);
  assert.equal(browser.calls.length, 0);
});

test('400, 401 and 413 drop the batch: sending it again cannot succeed', async () => {
  for (const status of [400, 401, 413]) {
    const result = await createTransport({ fetch: fakeFetch([{ status }]) })(URL_, BODY, 10);
    assert.equal(result.outcome, DROP);
    assert.equal(result.status, status);
  }
});

test('urgent: an accepted beacon is the whole delivery', async () => {
  const browser = fakeBrowser(() => true);
  const fetch = fakeFetch();
  const result = await createTransport({ browser, fetch })(URL_, BODY, 10, { urgent: true });
  assert.deepEqual(result, { outcome: SENT, via: 'beacon' });
  assert.equal(browser.calls[0].url, URL_);
  assert.equal(browser.calls[0].raw, BODY);
  assert.equal(fetch.calls.length, 0);
});

test('urgent: a refused, failing or missing beacon falls back to fetch', async () => {
  const browsers = [
    fakeBrowser(() => false),
    { sendBeacon: () => Promise.reject(new Error('sandbox gone')) },
    { sendBeacon: () => false },
    {},
    undefined,
  ];
  for (const browser of browsers) {
    const fetch = fakeFetch([{ status: 202 }]);
    const result = await createTransport({ browser, fetch })(URL_, BODY, BODY.length, {
      urgent: true,
    });
    assert.deepEqual(result, { outcome: SENT, status: 202, via: 'fetch' });
    assertPost(fetch.calls[0]);
  }
});

test("urgent: the fallback fetch's status is classified like any other", async () => {
  const fetch = fakeFetch([{ status: 429, headers: { 'Retry-After': '5' } }]);
  const send = createTransport({ browser: fakeBrowser(() => false), fetch });
  const result = await send(URL_, BODY, 10, { urgent: true });
  assert.equal(result.outcome, RETRY);
  assert.equal(result.retryAfterMs, 5000);
});

test('no fetch at all: a beacon is the fallback; if refused, a retry', async () => {
  for (const urgent of [false, true]) {
    const browser = fakeBrowser(() => true);
    const result = await createTransport({ browser, fetch: undefined })(URL_, BODY, 10, {
      urgent,
    });
    assert.deepEqual(result, { outcome: SENT, via: 'beacon' });
    assert.equal(browser.calls[0].raw, BODY);
  }
  const refused = await createTransport({ browser: fakeBrowser(() => false) })(URL_, BODY, 10);
  assert.equal(refused.outcome, RETRY);
  assert.equal((await createTransport({})(URL_, BODY, 10)).outcome, RETRY);
});
