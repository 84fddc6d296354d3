"""Addressing units: `layer:kind:index`, e.g. `2:cell:137` (layers count from 1)."""

from __future__ import annotations

from dataclasses import dataclass

from probe.errors import ProbeError

KINDS = {
    "lstm": ("cell", "hidden", "input_gate", "forget_gate", "output_gate", "candidate"),
    "gru": ("hidden", "reset_gate", "update_gate", "candidate"),
    "rnn": ("hidden",),
}
GATE_KINDS = {"input_gate", "forget_gate", "output_gate", "reset_gate", "update_gate"}
A_CELL = {"lstm": "an LSTM", "gru": "a GRU", "rnn": "a vanilla RNN"}  # for messages
SIGNS = ("positive", "negative", "absolute", "unusual")  # how strong contexts are ranked


def name_list(value) -> list | None:
    """A list of names (kinds, features, units) from a list, or from one name: `kinds="cell"`
    means ["cell"], not ["c", "e", "l", "l"]. None stays None."""
    return None if value is None else [value] if isinstance(value, (str, Unit)) else list(value)


@dataclass(frozen=True, order=True)
class Unit:
    """One recorded scalar per character: layer (1-based), kind and index within the layer."""

    layer: int
    kind: str
    index: int

    def __str__(self) -> str:
        return f"{self.layer}:{self.kind}:{self.index}"

    @property
    def label(self) -> str:
        """Human label for figures, e.g. 'layer 2 · cell 137'."""
        return f"layer {self.layer} · {self.kind.replace('_', ' ')} {self.index}"

    @classmethod
    def parse(cls, spec: str | Unit) -> Unit:
        if isinstance(spec, Unit):
            return spec
        parts = str(spec).strip().split(":")
        if len(parts) != 3 or not parts[0].isdigit() or not parts[2].isdigit():
            raise ProbeError(f"bad unit {spec!r}: expected LAYER:KIND:INDEX, e.g. 2:cell:137")
        return cls(int(parts[0]), parts[1], int(parts[2]))
