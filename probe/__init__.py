"""probe: look inside character-level recurrent networks.

Pipeline (data flows one way): corpus -> model -> train -> checkpoint -> record -> features
-> search -> dashboard / export.
"""

__version__ = "0.1.0"

from probe.errors import ProbeError  # noqa: E402
from probe.recording import Recording  # noqa: E402
from probe.units import Unit  # noqa: E402

__all__ = ["ProbeError", "Recording", "Unit", "__version__"]
