// Stand-ins for what Shopify's runtime hands the pixel (analytics, browser, customerPrivacy,
// init, settings), plus a manual clock, so the pixel's timing can be driven step by step.

import { createPixel } from '../src/pixel.js';

export const ENDPOINT = 'https://nova.example.com/v1/events';
export const KEY = 'pk_test_123';
export const SHOP = 'demo.myshopify.com';

let sequence = 0;

export function standardEvent(name, data = {}) {
  sequence += 1;
  return {
    id: `sh-${sequence}`,
    name,
    type: 'standard',
    timestamp: new Date(Date.UTC(2025, 0, 1, 12, 0, sequence % 60)).toISOString(),
    seq: sequence,
    clientId: 'client-1',
    context: { document: { location: { href: 'https://demo.example/products/x' } } },
    data,
  };
}

export function customEvent(name, customData) {
  return { ...standardEvent(name), type: 'custom', data: undefined, customData };
}

export function fakeClock() {
  let now = 0;
  let nextId = 1;
  const timers = new Map();
  return {
    now: () => now,
    setTimeout(fn, ms) {
      const id = nextId++;
      timers.set(id, { at: now + ms, fn });
      return id;
    },
    clearTimeout(id) {
      timers.delete(id);
    },
    pending: () => timers.size,
    // Runs every timer due by now + ms, in order, letting the async sends each one starts settle.
    async advance(ms) {
      const until = now + ms;
      for (;;) {
        const due = [...timers.entries()]
          .filter(([, t]) => t.at <= until)
          .sort((a, b) => a[1].at - b[1].at)[0];
        if (!due) break;
        timers.delete(due[0]);
        now = due[1].at;
        due[1].fn();
        await settle();
      }
      now = until;
      await settle();
    },
  };
}

// Lets chains of awaited promises (beacon, then fetch, then the next chunk) run to completion.
export async function settle() {
  for (let i = 0; i < 10; i += 1) await new Promise((resolve) => setImmediate(resolve));
}

export function fakeAnalytics() {
  const subscribers = new Map();
  return {
    subscribe(name, callback) {
      subscribers.set(name, [...(subscribers.get(name) ?? []), callback]);
      return () => true;
    },
    names: () => [...subscribers.keys()],
    // Delivers an event the way Shopify's pseudo-subscriptions do.
    emit(event) {
      const group = event.type === 'standard' ? 'all_standard_events' : 'all_custom_events';
      for (const name of [group, 'all_events', event.name]) {
        for (const callback of subscribers.get(name) ?? []) callback(event);
      }
    },
  };
}

export function fakeCustomerPrivacy() {
  const callbacks = [];
  return {
    subscribe(name, callback) {
      if (name === 'visitorConsentCollected') callbacks.push(callback);
      return () => true;
    },
    collect(customerPrivacy) {
      for (const callback of callbacks) callback({ customerPrivacy });
    },
  };
}

// `accept` decides each beacon's answer; the real sandbox answers with a Promise. Accepted
// bodies are also appended to `delivered`.
export function fakeBrowser(accept = () => true, delivered = []) {
  const calls = [];
  return {
    calls,
    async sendBeacon(url, body) {
      calls.push({ url, body: JSON.parse(body), raw: body });
      const accepted = await accept(calls.length);
      if (accepted === true) delivered.push(JSON.parse(body));
      return accepted;
    },
  };
}

// Answers from `responses` in order, then 202 forever; an Error in the list is thrown, and a
// Promise holds the request open until it settles. Bodies answered 2xx are also appended to
// `delivered`.
export function fakeFetch(responses = [], delivered = []) {
  const queue = [...responses];
  const calls = [];
  const fetch = async (url, init) => {
    calls.push({ url, init, body: JSON.parse(init.body) });
    const next = await (queue.shift() ?? { status: 202 });
    if (next instanceof Error) throw next;
    if (next.status >= 200 && next.status < 300) delivered.push(JSON.parse(init.body));
    const headers = new Map(
      Object.entries(next.headers ?? {}).map(([name, value]) => [name.toLowerCase(), value]),
    );
    const get = (name) => headers.get(name.toLowerCase()) ?? null;
    return { status: next.status, headers: { get } };
  };
  fetch.calls = calls;
  return fetch;
}

export function fakeLogger() {
  const warnings = [];
  return { warnings, warn: (message) => warnings.push(message) };
}

export const ALL_ALLOWED = {
  analyticsProcessingAllowed: true,
  marketingAllowed: true,
  preferencesProcessingAllowed: true,
  saleOfDataAllowed: true,
};

export function setup({
  beacon,
  responses,
  customer = null,
  customerPrivacy = ALL_ALLOWED,
  settings = { ingestUrl: ENDPOINT, ingestKey: KEY },
  shop = SHOP,
  options = {},
} = {}) {
  const analytics = fakeAnalytics();
  const delivered = [];
  const browser = fakeBrowser(beacon, delivered);
  const fetch = fakeFetch(responses, delivered);
  const clock = fakeClock();
  const privacy = fakeCustomerPrivacy();
  const logger = fakeLogger();
  let hide = () => {};
  const init = {
    data: { customer, shop: shop && { myshopifyDomain: shop, name: 'Demo' }, cart: null },
    customerPrivacy,
  };
  const pixel = createPixel(
    { analytics, browser, init, settings, customerPrivacy: privacy },
    {
      fetch,
      setTimeout: clock.setTimeout,
      clearTimeout: clock.clearTimeout,
      now: clock.now,
      random: () => 0,
      logger,
      onPageHidden: (callback) => {
        hide = callback;
      },
      ...options,
    },
  );
  return {
    pixel, analytics, browser, fetch, clock, privacy, logger,
    hidePage: async () => {
      hide();
      await settle();
    },
    // Every batch that reached the server, by accepted beacon or by fetch with a 2xx, in order.
    sentBatches: () => [...delivered],
  };
}

export async function emitAll(analytics, events) {
  for (const event of events) analytics.emit(event);
  await settle();
}
