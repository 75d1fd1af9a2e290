"""What a downstream service needs of job events: the envelope, the consumer loop, an event_id
dedupe helper, outage logging."""
