"""``python -m src.visualize ...``: see src/visualize/cli.py."""
import sys

from src.cli import quiet_ctrl_c

quiet_ctrl_c()  # Ctrl-C while OpenCV and Matplotlib load: one line, exit 130

from src.visualize.cli import main  # noqa: E402

sys.exit(main())
