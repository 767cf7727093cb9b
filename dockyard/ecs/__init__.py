"""Amazon ECS service deploys: task-definition values and diffs, a planner, a waiter and the service (its client is
:mod:`dockyard.clients.ecs`)."""
