"""Prefect flows (``transfer-image``, ``transfer-images``) and the ``imagehop`` command line.

Importing this package imports nothing else (the CLI must start fast): import
``imagehop.flows.transfer_image`` / ``imagehop.flows.transfer_images`` for the flows.
"""
