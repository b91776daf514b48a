"""Prefect tasks: one per step of the procedure, each a thin wrapper over one core call.

Tasks take plain values (regions, ids, pydantic records) and return small picklable records;
clients come from :mod:`imagehop.tasks.cloud`, never from parameters. Retry and cache policy:
:mod:`imagehop.tasks.policy`.
"""
