"""idnode: a secondary node of an industrial-internet identifier resolution system."""

__version__ = "0.1.0"
