"""imagehop core: cloud API clients, the segment transfer engine and the local cloud.

This package never imports Prefect; the ``tasks`` and ``flows`` packages wrap it.
"""

__version__ = "0.1.0"
