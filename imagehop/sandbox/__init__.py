"""The local two-region cloud: real Swift clusters plus Identity, Images and Servers APIs.

Used by the tests, the demo and the benchmarks. Needs the ``sandbox`` extra (PyPI ``swift``).
"""
