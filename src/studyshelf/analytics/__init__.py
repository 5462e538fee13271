"""Usage analytics: collection, enrichment, ingestion into the warehouse, and the summary API."""
