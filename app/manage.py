#!/usr/bin/env python
"""Django's command-line utility for the dockyard sample app."""
import os
import sys

# Commands that never use the secret key may run without one (image builds run collectstatic,
# CI runs the tests); any other command with DJANGO_DEBUG off needs DJANGO_SECRET_KEY.
KEYLESS_COMMANDS = {"collectstatic", "test"}


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sample.settings")
    if len(sys.argv) > 1 and sys.argv[1] in KEYLESS_COMMANDS:
        os.environ.setdefault("DJANGO_SECRET_KEY", "not-secret-%s-only" % sys.argv[1])
    try:
        from django.core.management import execute_from_command_line
    except ImportError as exc:
        raise ImportError(
            "Couldn't import Django. Is it installed and available on your PYTHONPATH? "
            "Did you forget to activate a virtual environment?"
        ) from exc
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
