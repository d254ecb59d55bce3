"""The 2016 EULAR/ACR/PRINTO MAS classification (Ravelli 2016): classified in `calculator`, fed and worded in
`facts`.
"""

__all__ = ["calculator", "facts"]
