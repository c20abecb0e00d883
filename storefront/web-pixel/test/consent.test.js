import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyticsDenied, mapConsent } from '../src/consent.js';

test('maps Shopify consent flags onto the ingest contract', () => {
  assert.deepEqual(
    mapConsent({
      analyticsProcessingAllowed: true,
      marketingAllowed: false,
      preferencesProcessingAllowed: true,
      saleOfDataAllowed: false,
    }),
    { analytics: true, marketing: false, preferences: true, sale_of_data: false },
  );
});

test('missing or non-boolean flags become null, never a guess', () => {
  assert.deepEqual(mapConsent({ analyticsProcessingAllowed: 'yes', marketingAllowed: undefined }), {
    analytics: null,
    marketing: null,
    preferences: null,
    sale_of_data: null,
  });
  assert.deepEqual(mapConsent(undefined), mapConsent(null));
  assert.equal(mapConsent(null).analytics, null);
});

test('only an explicit no to analytics counts as denied', () => {
  assert.equal(analyticsDenied({ analytics: false }), true);
  assert.equal(analyticsDenied({ analytics: null }), false);
  assert.equal(analyticsDenied({ analytics: true }), false);
});
