"""Source adapters: each one answers about one observable with a SourceResult."""
