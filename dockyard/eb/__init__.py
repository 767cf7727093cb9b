"""Elastic Beanstalk: Dockerrun renderers, deterministic bundles, a typed EB/S3 client, the deploy planner and
waiter, and the deploy lock with its audit records (shared with the ECS feature)."""
