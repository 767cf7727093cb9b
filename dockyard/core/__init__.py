"""What every deploy target (Elastic Beanstalk, ECS, SSH hosts) shares, once: the deploy lock, the audit history
and the actor (and release versions, the compose model...). Targets use it; it does its I/O only through the
clients (or the host connection) handed to it."""
