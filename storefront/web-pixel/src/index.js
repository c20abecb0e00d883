// Entry point the Shopify CLI bundles. All behaviour lives in ./pixel.js so that it can be
// tested without Shopify's runtime; this file only wires that runtime in.

import { register } from '@shopify/web-pixels-extension';
import { createPixel } from './pixel.js';
import { onPageHidden } from './page-lifecycle.js';

register(({ analytics, browser, init, settings, customerPrivacy }) => {
  createPixel({ analytics, browser, init, settings, customerPrivacy }, { onPageHidden });
});
