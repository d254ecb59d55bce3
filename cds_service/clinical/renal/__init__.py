"""Kidney function: creatinine clearance and KDIGO acute kidney injury in `calculator`, the `renal` and `aki`
calculations in `facts`.
"""

__all__ = ["calculator", "facts"]
