"""A thin client of the running gateway, for people at a terminal: the REST API over HTTP, the
events stream over Redis. It imports nothing of the service layer and builds no app."""
