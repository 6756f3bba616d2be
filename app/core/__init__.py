"""Pure domain: standard library only. No I/O libraries, no Qt, no crypto libraries."""
