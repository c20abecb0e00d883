import { test } from 'node:test';
import assert from 'node:assert/strict';
import { byteLength, chunkEvents } from '../src/chunk.js';

const small = (i) => ({ id: `e${i}`, name: 'page_viewed' });

test('splits by the per-request event limit', () => {
  const events = Array.from({ length: 250 }, (_, i) => small(i));
  const chunks = chunkEvents(events, { maxEvents: 100, maxBytes: 1e9 });
  assert.deepEqual(chunks.map((c) => c.length), [100, 100, 50]);
  assert.deepEqual(chunks.flat(), events);
});

test('splits by bytes, counting multi-byte characters as UTF-8', () => {
  const event = { id: 'x', title: 'é'.repeat(100) };
  const size = byteLength(JSON.stringify(event));
  assert.ok(size > 200);
  const chunks = chunkEvents([event, event, event], { maxEvents: 100, maxBytes: 2 * (size + 1) });
  assert.deepEqual(chunks.map((c) => c.length), [2, 1]);
});

test('an event larger than the byte limit travels alone', () => {
  const big = { id: 'big', blob: 'x'.repeat(5000) };
  const chunks = chunkEvents([small(1), big, small(2)], { maxEvents: 100, maxBytes: 1000 });
  assert.deepEqual(chunks.map((c) => c.map((e) => e.id)), [['e1'], ['big'], ['e2']]);
});

test('no events, no chunks', () => {
  assert.deepEqual(chunkEvents([], { maxEvents: 10, maxBytes: 10 }), []);
});
