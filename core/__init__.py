"""Watchtower core: the domain services shared by the pages, the CLI, the worker and the API."""

import os

# The portal, the worker and the scoring API share the machine's cores. OpenMP threads that spin while they wait
# take those cores from one another: beside two other processes on two cores, a gradient-boosting fit that takes
# 0.6 s alone took 70 s with spinning threads and 2 s with waiting ones. Set before scikit-learn loads OpenMP.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
