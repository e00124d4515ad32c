"""The Kafka worker: consumer-group members that enrich documents and bulk index them."""
