"""relrocheck: measure and gate the load-time dirty memory of ELF shared libraries."""

__version__ = "0.1.0"
