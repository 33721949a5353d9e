"""Service mode: tenants, API keys, plans, credits, usage and bulk jobs."""
