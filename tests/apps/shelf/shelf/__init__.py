"""shelf: a small Django site with the admin, whose static files nobody serves but a proxy in production."""
