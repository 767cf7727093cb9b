"""python3 -m notes serve | work | check: the image's ENTRYPOINT is `python3 -m notes`, its CMD `serve`."""
import sys

from notes.commands import main

sys.exit(main(sys.argv[1:]))
