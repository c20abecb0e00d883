// Shopify reports consent as {analyticsProcessingAllowed, marketingAllowed,
// preferencesProcessingAllowed, saleOfDataAllowed}; Nova's ingest contract wants
// {analytics, marketing, preferences, sale_of_data}. Anything that is not a real boolean
// becomes null ("no decision known"), so the server, not the pixel, decides what an unknown
// answer means for the visitor's privacy state.

const FIELDS = [
  ['analytics', 'analyticsProcessingAllowed'],
  ['marketing', 'marketingAllowed'],
  ['preferences', 'preferencesProcessingAllowed'],
  ['sale_of_data', 'saleOfDataAllowed'],
];

export function mapConsent(customerPrivacy) {
  const consent = {};
  for (const [ours, shopifys] of FIELDS) {
    const value = customerPrivacy?.[shopifys];
    consent[ours] = typeof value === 'boolean' ? value : null;
  }
  return consent;
}

// Only an explicit "no" to analytics stops collection: null still flows, and the server holds
// such events as short-lived session state until a decision arrives.
export function analyticsDenied(consent) {
  return consent.analytics === false;
}
