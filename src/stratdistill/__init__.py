"""stratdistill: distil strategic behaviour from a large LLM teacher into a small student."""

__version__ = "0.1.0"
