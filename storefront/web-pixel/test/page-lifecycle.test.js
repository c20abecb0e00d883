import { test } from 'node:test';
import assert from 'node:assert/strict';
import { onPageHidden } from '../src/page-lifecycle.js';

function fakeTarget() {
  const listeners = {};
  return {
    listeners,
    addEventListener(name, fn) {
      (listeners[name] ??= []).push(fn);
    },
    fire(name) {
      for (const fn of listeners[name] ?? []) fn();
    },
  };
}

test('in a page (iframe sandbox) hiding or leaving the page triggers the callback', () => {
  const doc = { ...fakeTarget(), visibilityState: 'visible' };
  const scope = { ...fakeTarget(), document: doc };
  let calls = 0;
  onPageHidden(() => (calls += 1), scope);
  doc.fire('visibilitychange');
  assert.equal(calls, 0, 'becoming visible is not a reason to flush');
  doc.visibilityState = 'hidden';
  doc.fire('visibilitychange');
  scope.fire('pagehide');
  assert.equal(calls, 2);
});

test('in a worker (strict sandbox) there is nothing to listen to', () => {
  const scope = fakeTarget();
  onPageHidden(() => assert.fail('never called'), scope);
  assert.deepEqual(scope.listeners, {});
});
