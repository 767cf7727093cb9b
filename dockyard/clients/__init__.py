"""Small typed clients: each takes its runner / session / connection from the caller and does no I/O in its
constructor."""
