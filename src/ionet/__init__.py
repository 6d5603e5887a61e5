"""ionet: the network services of a Python IO course, made real.

Every service is written once, as protocol objects that never touch a socket
(see ``ionet.core.protocol``), and runs on any of the concurrency engines in
``ionet.core.engines``, switched by a flag.
"""

__version__ = "0.1.0"
