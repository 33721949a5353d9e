"""iocscope: self-hosted IOC enrichment with one explainable verdict."""

__version__ = "0.1.0"
