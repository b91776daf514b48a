"""The local two-region cloud: real Swift clusters plus Identity, Images and Servers APIs.

Used by the tests, the demo and the benchmarks. Needs the ``sandbox`` extra (PyPI ``swift``).
Everything listens on 127.0.0.1 only::

    python -m imagehop_sandbox up [--state-dir DIR] [--token-lifetime S] ...   # background
    eval "$(python -m imagehop_sandbox env [--target-user demo-other])"
    python -m imagehop_sandbox status
    python -m imagehop_sandbox down                                            # nothing left

What runs (``supervisor`` owns it all):

* two Swift clusters, ``DFW`` and ``IAD`` (:mod:`.swift_cluster`), accepting the Identity's
  signed tokens (:mod:`.swift_auth`, :mod:`.tokens`) and Swift's temporary URLs; ``swift``
  CLI login:
  ``swift -A <identity host>/auth/v1.0[/IAD] -U demo -K <api key> list``;
* one API service (:mod:`.service`): Identity v2.0 (:mod:`.identity_api`) and, for the
  generic-OpenStack mode, Keystone v3 under ``/identity[/<region>]`` (:mod:`.keystone_v3`),
  Cloud Images v2 with
  export/import tasks (:mod:`.images_api`, :mod:`.jobs`) and Cloud Servers v2
  (:mod:`.compute_api`) for each region, each on its own port, state in SQLite; in the
  regions the option ``glance_regions`` names, the Images API is today's upstream Glance
  instead: image create, upload, staging, interoperable import (``glance-direct``,
  ``web-download``, ``glance-download``; option ``import_methods``) and image data
  (:mod:`.glance_api`, :mod:`.glance_import`, :mod:`.image_data`);
* a sandbox-only admin API under ``/_sandbox`` (:mod:`.admin_api`) for tests.

Python: :mod:`.control` (``up``, ``down``, ``env_lines``, ``load_info``, ``restart_api``) and,
for tests, :class:`.testing.LocalCloud`.
"""
