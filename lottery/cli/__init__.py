"""The ``lottery`` command line (layer 7, the top): :mod:`~lottery.cli.app` builds the
parser from the command groups (``run``, ``book``, ``data``, ``plan``, ``federated``);
:mod:`~lottery.cli.args` holds what they share."""
