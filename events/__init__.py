"""What a downstream service needs of job events: the envelope, the consumer loop, outage logging."""
