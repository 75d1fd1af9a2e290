"""Job lifecycle events: the envelope, the outbox publisher and relay, and the consumer."""
