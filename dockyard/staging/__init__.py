"""Staging over SSH: hosts and names (``model``), remote commands as data (``commands``), the front proxy's
configuration (``proxy``), the per-host planner and deployer (``deploy``) and the task-facing service
(``service``)."""
