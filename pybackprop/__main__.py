"""`python -m pybackprop ...` is the `pybackprop` command."""
import sys

from .cli import main

sys.exit(main())
