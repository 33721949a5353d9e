"""Network source adapters, one module per vendor API."""
