"""Elastic Beanstalk: Dockerrun renderers, deterministic bundles, the deploy planner and waiter, and the service
(its client is :mod:`dockyard.clients.eb`; the lock and audit records are :mod:`dockyard.core`'s)."""
