// The entry point against the real @shopify/web-pixels-extension package: its register()
// hands the extension to a `shopify.extend` global that Shopify's runtime provides.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fakeAnalytics, fakeCustomerPrivacy, ENDPOINT, KEY, SHOP } from './fakes.js';

test('src/index.js registers a Web Pixel that subscribes to events', async (t) => {
  const registered = [];
  globalThis.shopify = { extend: (target, fn) => registered.push({ target, fn }) };
  t.after(() => delete globalThis.shopify);
  await import('../src/index.js');
  assert.equal(registered.length, 1);
  assert.equal(registered[0].target, 'WebPixel::Render');

  const analytics = fakeAnalytics();
  registered[0].fn({
    analytics,
    browser: { sendBeacon: async () => true },
    init: { data: { shop: { myshopifyDomain: SHOP }, customer: null }, customerPrivacy: {} },
    settings: { ingestUrl: ENDPOINT, ingestKey: KEY },
    customerPrivacy: fakeCustomerPrivacy(),
  });
  assert.deepEqual(analytics.names().sort(), ['all_custom_events', 'all_standard_events']);
});
