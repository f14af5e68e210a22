//! PID 1 supervision (owned by the supervisor work).
