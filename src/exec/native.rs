//! Native hook processes.
