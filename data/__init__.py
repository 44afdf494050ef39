"""Image files, labels, data sets and run folders. Importing any of it first installs data.io's
report of Ctrl-C as one line, before a script's slow imports."""
from . import io  # noqa: F401
