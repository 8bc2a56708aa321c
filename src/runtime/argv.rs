//! runc command-line parsing. Filled in by the runtime work.
