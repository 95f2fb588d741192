"""Cases: actions on a case, its SLA clocks, public replies, and reading the queue."""
