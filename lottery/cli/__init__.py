"""The ``lottery`` command line (layer 7, the top): :mod:`~lottery.cli.app` builds the
parser from the command groups (``run``, ``book``, ``data``, ``plan``, ``federated``,
``store``: :mod:`~lottery.cli.store` exports and imports a filled run store);
:mod:`~lottery.cli.args` holds what they share."""
