"""The command-line error policy shared by the scripts: user errors are one line, bugs are tracebacks.

A mistake of the user (a missing or unreadable path, a file of the wrong format, a corrupt model or
checkpoint, a bad argument value) ends the script with ONE line on stderr, ``error: <what>: <why>``,
and exit code 2. A script's ``--debug`` flag re-raises instead, with the full traceback. Anything
else (a real bug) is not caught and gives its traceback as usual.

Usage in a script::

    from src.cli import UserError, report_errors

    def main(argv=None):
        args = parse_args(argv)           # the parser also defines --debug (add_debug_flag)
        if not os.path.exists(args.input):
            raise UserError(f"{args.input}: no such file")
        ...

    if __name__ == "__main__":
        sys.exit(report_errors(main))

Ctrl-C ends a script with one line and exit code 130 at any moment: a script calls
``quiet_ctrl_c()`` before its heavy imports (NumPy, OpenCV, TensorFlow), which makes Ctrl-C exit
at once; report_errors hands Ctrl-C back to Python (KeyboardInterrupt) when main starts, so that
main can save what it has and clean up temporary files.
"""
import os
import re
import signal
import sys
import tempfile
import types

__all__ = ["UserError", "USER_ERRORS", "add_debug_flag", "check_output_folder", "format_error", "import_tensorflow",
           "one_line_usage_errors", "quiet_ctrl_c", "report_errors"]


# The shell's exit status for a process ended by SIGINT (128 + 2).
EXIT_INTERRUPTED = 130


class UserError(Exception):
    """A mistake of the user (bad path, value, file): printed as one line."""


# What report_errors treats as the user's mistake by default: UserError and the OS errors about paths
# (missing, existing, a folder where a file was expected or the reverse, no permission).
USER_ERRORS = (UserError, FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError,
               PermissionError)


def _exit_interrupted(signum, frame):
    """SIGINT handler of quiet_ctrl_c: one line, exit 130, no traceback (nothing is written yet)."""
    os.write(2, b"error: interrupted\n")
    os._exit(EXIT_INTERRUPTED)


def quiet_ctrl_c():
    """Makes Ctrl-C print ``error: interrupted`` and exit 130 at once, until report_errors runs main.

    Call it first thing in a script, before the imports that take seconds, where a KeyboardInterrupt
    would print a traceback of import machinery. Only in the main thread (signal handlers).
    """
    signal.signal(signal.SIGINT, _exit_interrupted)


def _usage_error(parser, message):
    """argparse's error() as one line: raises UserError (report_errors prints it, exit 2)."""
    raise UserError(f"{parser.prog}: {message} (see {parser.prog} --help)")


def one_line_usage_errors(parser):
    """Makes the parser's usage errors (unknown flag, bad value) a UserError, i.e. one ``error:`` line.

    The parser must then be used inside report_errors. Returns the parser.
    """
    parser.error = types.MethodType(_usage_error, parser)
    return parser


def add_debug_flag(parser):
    """Adds the ``--debug`` flag (full tracebacks instead of one-line errors) to an argparse parser.

    It also makes the parser's usage errors one line (see one_line_usage_errors).
    """
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error instead of one line")
    return one_line_usage_errors(parser)


def check_output_folder(path, what):
    """Raises UserError unless `path` is a folder that can be written, or one that can be created.

    Nothing is created, so a run that stops before writing leaves no empty folder.

    Args:
        path: str, the folder a script will write into.
        what: str, where the path comes from, for the message (e.g. '--output_path').
    """
    if os.path.exists(path) and not os.path.isdir(path):
        raise UserError(f"{path}: exists and is not a folder ({what})")
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise UserError(f"{path}: cannot be created: {existing} is a file, not a folder ({what})")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{path}: cannot write there: no permission in {existing} ({what})")


def format_error(error):
    """The one-line text of `error`: ``<file>: <reason>`` for OS errors, else str(error), newlines folded."""
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        text = f"{error.filename}: {error.strerror}"
        if error.filename2 is not None:
            text = f"{error.filename} -> {error.filename2}: {error.strerror}"
    else:
        text = str(error) or type(error).__name__
        if isinstance(error, KeyError) and len(error.args) == 1:
            text = str(error.args[0])
    return " ".join(text.split())


def report_errors(main, argv=None, user_errors=USER_ERRORS):
    """Runs ``main(argv)`` and returns its exit code (None counts as 0).

    On an exception of `user_errors` prints ``error: <message>`` (one line) to stderr and returns 2;
    on Ctrl-C (KeyboardInterrupt, whose message may say what was saved) ``error: <message>`` or
    ``error: interrupted`` and returns EXIT_INTERRUPTED (130). With ``--debug`` among the
    arguments (`argv`, default ``sys.argv[1:]``) it re-raises instead.
    """
    if argv is None:
        argv = sys.argv[1:]
    argv = list(argv)
    quiet = signal.getsignal(signal.SIGINT) is _exit_interrupted
    if quiet:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # main may now save and clean up
    try:
        code = main(argv)
    except user_errors as e:
        if "--debug" in argv:
            raise
        sys.stdout.flush()
        print(f"error: {format_error(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:  # Ctrl-C: one line (what was saved, if the script says), 130
        if "--debug" in argv:
            raise
        sys.stdout.flush()
        print(f"error: {format_error(e) if str(e) else 'interrupted'}", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if quiet:
            signal.signal(signal.SIGINT, _exit_interrupted)
    return 0 if code is None else code


# Lines TensorFlow's C++ start-up writes to stderr before its logging is set up, ignoring
# TF_CPP_MIN_LOG_LEVEL (e.g. "I0000 00:00:... port.cc:153] oneDNN custom operations are on ...").
_ABSL_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
_LOG_LINE = re.compile(r"^([IWE])\d{4} \d\d:\d\d:")


def import_tensorflow():
    """Imports and returns TensorFlow, honouring TF_CPP_MIN_LOG_LEVEL for its start-up messages too.

    TensorFlow 2.21 prints a few C++ log lines while it is imported (the oneDNN notice) even with
    TF_CPP_MIN_LOG_LEVEL set. With the level at 1 (2, 3) this drops the INFO (and WARNING, ERROR)
    lines written to stderr during the import and the absl preamble; everything else is passed on.
    With the level unset or 0 it is a plain import.
    """
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    level = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0").strip()
    level = int(level) if level.isdigit() else 0
    if level < 1:
        import tensorflow
        return tensorflow
    hidden = "IWE"[:min(level, 3)]
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            import tensorflow
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", errors="replace")
            for line in text.splitlines(keepends=True):
                match = _LOG_LINE.match(line)
                if line.startswith(_ABSL_PREAMBLE) or (match and match.group(1) in hidden):
                    continue
                sys.stderr.write(line)
            sys.stderr.flush()
    return tensorflow
