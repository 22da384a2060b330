"""Single source of truth: sources, ingestion, standardisation, identity resolution."""
