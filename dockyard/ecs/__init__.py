"""Amazon ECS service deploys: task-definition values and diffs, a planner, a typed client and a waiter."""
