// Tells the pixel when the page is being hidden or unloaded, where the runtime lets it know.
// The strict sandbox runs app pixels in a Web Worker, which has no document and receives no
// page lifecycle events, so there this subscribes to nothing and the pixel relies on its timer
// and immediate flushes. In an iframe sandbox the document's visibility follows the page's.

export function onPageHidden(callback, scope = globalThis) {
  const doc = scope.document;
  if (typeof doc?.addEventListener !== 'function') return;
  doc.addEventListener('visibilitychange', () => {
    if (doc.visibilityState === 'hidden') callback();
  });
  // Safari does not always fire visibilitychange on unload; pagehide covers it.
  scope.addEventListener?.('pagehide', callback);
}
