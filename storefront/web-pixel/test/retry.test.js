import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_DELAY_MS, MAX_RETRY_AFTER_MS, backoffDelay, parseRetryAfter } from '../src/retry.js';

test('Retry-After in seconds', () => {
  assert.equal(parseRetryAfter('3', 0), 3000);
  assert.equal(parseRetryAfter(' 0 ', 0), 0);
});

test('Retry-After as an HTTP date, relative to now', () => {
  const now = Date.parse('2025-01-01T12:00:00Z');
  assert.equal(parseRetryAfter('Wed, 01 Jan 2025 12:00:05 GMT', now), 5000);
  assert.equal(parseRetryAfter('Wed, 01 Jan 2025 11:00:00 GMT', now), 0);
});

test('missing or unreadable Retry-After gives null; absurd ones are capped', () => {
  assert.equal(parseRetryAfter(null, 0), null);
  assert.equal(parseRetryAfter('', 0), null);
  assert.equal(parseRetryAfter('soon', 0), null);
  assert.equal(parseRetryAfter('-5', 0), null);
  assert.equal(parseRetryAfter('999999', 0), MAX_RETRY_AFTER_MS);
});

test('backoff doubles per attempt, is jittered within its ceiling, and is capped', () => {
  assert.equal(backoffDelay(0, () => 0), 1000);
  assert.equal(backoffDelay(0, () => 1), 2000);
  assert.equal(backoffDelay(1, () => 0), 2000);
  assert.equal(backoffDelay(3, () => 1), 16000);
  assert.equal(backoffDelay(20, () => 1), MAX_DELAY_MS);
});
