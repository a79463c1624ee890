"""digest: a folder of Markdown articles in, a weekly email newsletter out."""

__version__ = "0.1.0"
