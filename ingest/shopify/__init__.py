"""What Shopify sends Nova, turned into Nova's records: webhook verification, REST product and
order payloads, bulk-operation JSONL exports and product CSV exports."""
