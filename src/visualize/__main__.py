"""``python -m src.visualize ...``: see src/visualize/cli.py."""
import sys

from src.visualize.cli import main

sys.exit(main())
