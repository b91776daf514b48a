"""How imagehop runs outside a terminal: Prefect deployments (``prefect.yaml``), serving them
from one process (``serve.py``), credentials and result storage set up once, and the embedding
example (``embed.py``). See ``deployments/README.md``."""
