"""notes: a small Flask app with a worker, MariaDB and a volume of attachments (a dockyard adoption test)."""
