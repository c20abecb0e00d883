// Splits buffered events into request-sized batches. Two limits apply: the ingest endpoint's
// events-per-batch limit (413 beyond it) and the 64 KiB that browsers allow a beacon or a
// keepalive fetch to carry. An event too large for the byte limit travels alone.

const encoder = new TextEncoder();

export function byteLength(text) {
  return encoder.encode(text).length;
}

export function chunkEvents(events, { maxEvents, maxBytes }) {
  const chunks = [];
  let current = [];
  let size = 0;
  for (const event of events) {
    // +1 for the comma joining it to the previous event in the array.
    const eventSize = byteLength(JSON.stringify(event)) + 1;
    const full = current.length >= maxEvents || (current.length > 0 && size + eventSize > maxBytes);
    if (full) {
      chunks.push(current);
      current = [];
      size = 0;
    }
    current.push(event);
    size += eventSize;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}
